/* Compiled inner loops of the DAVIS metrics: PNG row unfiltering and per-object J/F pixel counts.
 *
 * Optional: stg.metrics falls back to its numpy code when this module is not built, and the tests
 * compare both (and cv2.dilate) on random and real masks. Only counts leave this file; every
 * division and the F harmonic mean stay in Python, in the official toolkit's float64 order.
 * Plain C API and the buffer protocol: no numpy headers at build time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ PNG unfiltering (8-bit, 1 channel) */

/* Are the n (a multiple of 8) bytes at p all zero? One branch per call. */
static inline int all_zero(const uint8_t *p, Py_ssize_t n) {
    uint64_t any = 0, word;
    for (Py_ssize_t i = 0; i < n; i += 8) {
        memcpy(&word, p + i, 8);
        any |= word;
    }
    return any == 0;
}

static inline uint8_t paeth(int a, int b, int c) {
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return (uint8_t)a;
    if (pb <= pc) return (uint8_t)b;
    return (uint8_t)c;
}

/* unfilter(rows, width, height) -> bytearray of height*width pixels, or None for an unknown filter type. */
static PyObject *unfilter(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer rows;
    Py_ssize_t width, height;
    if (!PyArg_ParseTuple(args, "y*nn", &rows, &width, &height)) return NULL;
    if (width <= 0 || height <= 0 || rows.len != height * (width + 1)) {
        PyBuffer_Release(&rows);
        PyErr_SetString(PyExc_ValueError, "filtered rows do not match width and height");
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, width * height);
    if (out == NULL) {
        PyBuffer_Release(&rows);
        return NULL;
    }
    const uint8_t *src = (const uint8_t *)rows.buf;
    uint8_t *dst = (uint8_t *)PyByteArray_AS_STRING(out);
    int unknown = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t y = 0; y < height && !unknown; y++) {
        const uint8_t *line = src + y * (width + 1);
        uint8_t kind = line[0];
        const uint8_t *in = line + 1;
        uint8_t *row = dst + y * width;
        const uint8_t *up = y > 0 ? row - width : NULL;
        Py_ssize_t x;
        switch (kind) {
        case 0:
            memcpy(row, in, width);
            break;
        case 1: { /* mask rows are mostly zero deltas: whole zero words repeat the running value */
            uint8_t left = 0;
            x = 0;
            while (x < width) {
                if (x + 32 <= width && all_zero(in + x, 32)) {
                    memset(row + x, left, 32);
                    x += 32;
                    continue;
                }
                if (x + 8 <= width && all_zero(in + x, 8)) {
                    memset(row + x, left, 8);
                    x += 8;
                    continue;
                }
                row[x] = left = (uint8_t)(in[x] + left);
                x++;
            }
            break;
        }
        case 2:
            if (up == NULL) memcpy(row, in, width);
            else for (x = 0; x < width; x++) row[x] = (uint8_t)(in[x] + up[x]);
            break;
        case 3:
            for (x = 0; x < width; x++) {
                int left = x > 0 ? row[x - 1] : 0, above = up ? up[x] : 0;
                row[x] = (uint8_t)(in[x] + ((left + above) >> 1));
            }
            break;
        case 4:
            for (x = 0; x < width; x++) {
                int left = x > 0 ? row[x - 1] : 0, above = up ? up[x] : 0;
                int corner = (x > 0 && up) ? up[x - 1] : 0;
                row[x] = (uint8_t)(in[x] + paeth(left, above, corner));
            }
            break;
        default:
            unknown = 1;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&rows);
    if (unknown) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

/* ------------------------------------------------------------------ J and F counts per object */

typedef struct {
    Py_ssize_t top, bottom, left, right; /* bounding box, bottom/right exclusive; top = -1 when empty */
    long long area;
} Box;

/* One object's boundary pixels as sorted column lists per row (rows top..bottom-1): sparse, so matching
 * looks up only the few columns of each nearby row instead of dilating a window. */
typedef struct {
    Py_ssize_t top, bottom;
    Py_ssize_t *row_start; /* bottom - top + 1 offsets into columns */
    int *columns;
    long long count;
} Boundary;

static void free_boundary(Boundary *boundary) {
    free(boundary->row_start);
    free(boundary->columns);
    boundary->row_start = NULL;
    boundary->columns = NULL;
}

/* Appends the columns x in [start, end) where flags[x] != 0, skipping zero words; returns the new length. */
static Py_ssize_t append_nonzero(const uint8_t *flags, Py_ssize_t start, Py_ssize_t end, int *columns, Py_ssize_t n) {
    Py_ssize_t x = start;
    while (x < end) {
        if (x + 32 <= end && all_zero(flags + x, 32)) {
            x += 32;
            continue;
        }
        if (x + 8 <= end && all_zero(flags + x, 8)) {
            x += 8;
            continue;
        }
        columns[n] = (int)x;
        n += flags[x] != 0;
        x++;
    }
    return n;
}

/* The official _seg2bmap of labels == label, on the rows and columns where it can be nonzero (the box grown by one
 * toward the origin): a pixel is a boundary pixel when its 2x2 block (right, below, below-right) is not constant;
 * on the last row only the right neighbour counts, on the last column only the one below, and the bottom-right
 * pixel never. Returns -1 when out of memory. */
static int find_boundary(const uint8_t *labels, Py_ssize_t width, Py_ssize_t height, uint8_t label, const Box *box,
                         Boundary *out) {
    Py_ssize_t top = box->top > 0 ? box->top - 1 : 0, left = box->left > 0 ? box->left - 1 : 0;
    Py_ssize_t bottom = box->bottom, right = box->right;
    Py_ssize_t inner_right = right < width - 1 ? right : width - 1; /* columns with a right neighbour */
    out->top = top;
    out->bottom = bottom;
    out->count = 0;
    out->row_start = malloc(sizeof(Py_ssize_t) * (size_t)(bottom - top + 1));
    out->columns = malloc(sizeof(int) * (size_t)((bottom - top) * (right - left)));
    if (out->row_start == NULL || out->columns == NULL) {
        free_boundary(out);
        return -1;
    }
    uint8_t *flags = malloc((size_t)width);
    if (flags == NULL) {
        free_boundary(out);
        return -1;
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t y = top; y < bottom; y++) {
        out->row_start[y - top] = n;
        const uint8_t *p = labels + y * width;
        Py_ssize_t end = inner_right;
        if (y + 1 < height) {
            const uint8_t *q = p + width;
            for (Py_ssize_t x = left; x < inner_right; x++) {
                uint8_t here = p[x] == label;
                flags[x] = (uint8_t)((here ^ (p[x + 1] == label)) | (here ^ (q[x] == label)) |
                                     (here ^ (q[x + 1] == label)));
            }
            if (right == width) { /* last column: only the pixel below */
                flags[width - 1] = (p[width - 1] == label) != (q[width - 1] == label);
                end = width;
            }
        } else {
            for (Py_ssize_t x = left; x < inner_right; x++) flags[x] = (p[x] == label) != (p[x + 1] == label);
        }
        n = append_nonzero(flags, left, end, out->columns, n);
    }
    free(flags);
    out->row_start[bottom - top] = n;
    out->count = n;
    return 0;
}

/* A boundary's pixels as bit rows of a window (rows top.., columns left..; `words` 64-bit words per row). */
static void set_bits(const Boundary *boundary, uint64_t *bits, Py_ssize_t top, Py_ssize_t left, Py_ssize_t words) {
    for (Py_ssize_t y = boundary->top; y < boundary->bottom; y++) {
        uint64_t *row = bits + (y - top) * words;
        for (Py_ssize_t i = boundary->row_start[y - boundary->top]; i < boundary->row_start[y - boundary->top + 1]; i++) {
            Py_ssize_t x = boundary->columns[i] - left;
            row[x >> 6] |= (uint64_t)1 << (x & 63);
        }
    }
}

/* Target pixels with a source pixel inside the disk x^2 + y^2 <= r^2 around them, i.e. count(target &
 * dilate(source, disk)) with cv2.dilate's zero padding. Bit-parallel: the source rows dilated horizontally by
 * 0..r pixels (one pixel per step), then per target row the OR of rows y + dy dilated by half[|dy|] =
 * isqrt(r^2 - dy^2). Dilating inside a window that holds every source and target pixel is exact. */
static long long near_count(const uint64_t *target, const uint64_t *source, uint64_t *levels, Py_ssize_t rows,
                            Py_ssize_t words, int radius, const int *half) {
    Py_ssize_t plane = rows * words;
    memcpy(levels, source, sizeof(uint64_t) * (size_t)plane);
    for (int level = 1; level <= radius; level++) {
        const uint64_t *in = levels + (level - 1) * plane;
        uint64_t *out = levels + level * plane;
        for (Py_ssize_t y = 0; y < rows; y++) {
            const uint64_t *a = in + y * words;
            uint64_t *b = out + y * words;
            for (Py_ssize_t w = 0; w < words; w++) {
                uint64_t up = (a[w] << 1) | (w > 0 ? a[w - 1] >> 63 : 0);
                uint64_t down = (a[w] >> 1) | (w + 1 < words ? a[w + 1] << 63 : 0);
                b[w] = a[w] | up | down;
            }
        }
    }
    long long count = 0;
    for (Py_ssize_t y = 0; y < rows; y++) {
        const uint64_t *t = target + y * words;
        for (Py_ssize_t w = 0; w < words; w++) {
            if (!t[w]) continue;
            uint64_t near = 0;
            for (int dy = -radius; dy <= radius; dy++) {
                Py_ssize_t row = y + dy;
                if (row < 0 || row >= rows) continue;
                near |= levels[half[dy < 0 ? -dy : dy] * plane + row * words + w];
            }
            count += __builtin_popcountll(t[w] & near);
        }
    }
    return count;
}

/* (result boundary pixels near the GT boundary, GT boundary pixels near the result boundary) of two nonempty
 * boundaries, in the window covering both. Returns -1 when out of memory. */
static int matched_counts(const Boundary *gt, const Boundary *res, Py_ssize_t gt_left, Py_ssize_t gt_right,
                          Py_ssize_t res_left, Py_ssize_t res_right, int radius, const int *half, long long out[2]) {
    Py_ssize_t top = gt->top < res->top ? gt->top : res->top;
    Py_ssize_t bottom = gt->bottom > res->bottom ? gt->bottom : res->bottom;
    Py_ssize_t left = gt_left < res_left ? gt_left : res_left, right = gt_right > res_right ? gt_right : res_right;
    Py_ssize_t rows = bottom - top, words = (right - left + 63) / 64, plane = rows * words;
    uint64_t *buffer = calloc((size_t)plane * (size_t)(radius + 3), sizeof(uint64_t));
    if (buffer == NULL) return -1;
    uint64_t *gt_bits = buffer, *res_bits = buffer + plane, *levels = buffer + 2 * plane;
    set_bits(gt, gt_bits, top, left, words);
    set_bits(res, res_bits, top, left, words);
    out[0] = near_count(res_bits, gt_bits, levels, rows, words, radius, half);
    out[1] = near_count(gt_bits, res_bits, levels, rows, words, radius, half);
    free(buffer);
    return 0;
}

/* Columns [first, last] holding the row's nonzero pixels; first > last when there are none. */
static void nonzero_span(const uint8_t *row, Py_ssize_t width, Py_ssize_t *first, Py_ssize_t *last) {
    Py_ssize_t x = 0;
    while (x + 32 <= width && all_zero(row + x, 32)) x += 32;
    while (x + 8 <= width && all_zero(row + x, 8)) x += 8;
    while (x < width && !row[x]) x++;
    *first = x;
    x = width;
    while (x - 32 >= 0 && all_zero(row + x - 32, 32)) x -= 32;
    while (x - 8 >= 0 && all_zero(row + x - 8, 8)) x -= 8;
    x--;
    while (x >= 0 && !row[x]) x--;
    *last = x;
}

#define FEW_OBJECTS 8

/* Areas, intersections and bounding boxes of labels 1..K, counting only the span of each row's nonzero pixels. */
static void count_regions(const uint8_t *gt, const uint8_t *res, Py_ssize_t width, Py_ssize_t height,
                          int num_objects, Box *gt_boxes, Box *res_boxes, long long *inter) {
    long long gt_area[256] = {0}, res_area[256] = {0}, gt_before[256] = {0}, res_before[256] = {0};
    for (Py_ssize_t y = 0; y < height; y++) {
        const uint8_t *g = gt + y * width, *r = res + y * width;
        Py_ssize_t first, last, f, l;
        nonzero_span(g, width, &first, &last);
        nonzero_span(r, width, &f, &l);
        first = f < first ? f : first;
        last = l > last ? l : last;
        if (first > last) continue; /* both rows empty */
        if (num_objects <= FEW_OBJECTS) { /* one vectorised pass per label: no histogram store chains */
            for (int label = 1; label <= num_objects; label++) {
                const uint8_t value = (uint8_t)label;
                int in_gt = 0, in_res = 0, in_both = 0;
                for (Py_ssize_t x = first; x <= last; x++) {
                    int a = g[x] == value, b = r[x] == value;
                    in_gt += a;
                    in_res += b;
                    in_both += a & b;
                }
                gt_area[label] += in_gt;
                res_area[label] += in_res;
                inter[label] += in_both;
            }
        } else {
            for (Py_ssize_t x = first; x <= last; x++) {
                uint8_t a = g[x], b = r[x];
                gt_area[a]++;
                res_area[b]++;
                inter[a] += a == b;
            }
        }
        for (int label = 1; label <= num_objects; label++) {
            const uint8_t *rows[2] = {g, r};
            long long *areas[2] = {gt_area, res_area}, *before[2] = {gt_before, res_before};
            Box *boxes[2] = {gt_boxes, res_boxes};
            for (int side = 0; side < 2; side++) {
                if (areas[side][label] == before[side][label]) continue;
                Box *box = &boxes[side][label];
                Py_ssize_t x0 = first, x1 = last;
                while (rows[side][x0] != label) x0++;
                while (rows[side][x1] != label) x1--;
                if (box->top < 0) {
                    box->top = y;
                    box->left = x0;
                    box->right = x1 + 1;
                } else {
                    box->left = x0 < box->left ? x0 : box->left;
                    box->right = x1 + 1 > box->right ? x1 + 1 : box->right;
                }
                box->bottom = y + 1;
                before[side][label] = areas[side][label];
            }
        }
    }
    for (int label = 1; label <= num_objects; label++) {
        gt_boxes[label].area = gt_area[label];
        res_boxes[label].area = res_area[label];
    }
    inter[0] = 0;
}

/* object_counts(gt, res, width, height, num_objects, radius) -> list of (intersection, GT area, result area,
 * GT boundary pixels, result boundary pixels, result boundary pixels near the GT boundary, GT boundary pixels
 * near the result boundary) for objects 1..K. Label maps are uint8, row-major; labels above K count as no
 * object. */
static PyObject *object_counts(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer gt_buffer, res_buffer;
    Py_ssize_t width, height;
    int num_objects, radius;
    if (!PyArg_ParseTuple(args, "y*y*nnii", &gt_buffer, &res_buffer, &width, &height, &num_objects, &radius))
        return NULL;
    PyObject *result = NULL;
    Box gt_boxes[256], res_boxes[256];
    long long inter[256] = {0}, counts[256][4];
    int half[251];
    int failed = 0;
    if (width <= 0 || height <= 0 || gt_buffer.len != width * height || res_buffer.len != width * height) {
        PyErr_SetString(PyExc_ValueError, "label maps do not match width and height");
        goto done;
    }
    if (num_objects < 0 || num_objects > 254 || radius < 0 || radius > 250) {
        PyErr_SetString(PyExc_ValueError, "num_objects must be in 0..254 and radius in 0..250");
        goto done;
    }
    const uint8_t *gt = gt_buffer.buf, *res = res_buffer.buf;
    for (int i = 0; i < 256; i++) {
        gt_boxes[i] = res_boxes[i] = (Box){-1, -1, -1, -1, 0};
        memset(counts[i], 0, sizeof counts[i]);
    }
    for (int dy = 0; dy <= radius; dy++) {
        int h = 0;
        while ((long)(h + 1) * (h + 1) + (long)dy * dy <= (long)radius * radius) h++;
        half[dy] = h;
    }
    Py_BEGIN_ALLOW_THREADS
    count_regions(gt, res, width, height, num_objects, gt_boxes, res_boxes, inter);
    for (int label = 1; label <= num_objects && !failed; label++) {
        Boundary gt_boundary = {0}, res_boundary = {0};
        if (gt_boxes[label].area)
            failed |= find_boundary(gt, width, height, (uint8_t)label, &gt_boxes[label], &gt_boundary);
        if (res_boxes[label].area && !failed)
            failed |= find_boundary(res, width, height, (uint8_t)label, &res_boxes[label], &res_boundary);
        if (!failed) {
            counts[label][0] = gt_boundary.count;
            counts[label][1] = res_boundary.count;
            if (gt_boundary.count && res_boundary.count) {
                const Box *gb = &gt_boxes[label], *rb = &res_boxes[label];
                failed |= matched_counts(&gt_boundary, &res_boundary, gb->left > 0 ? gb->left - 1 : 0, gb->right,
                                         rb->left > 0 ? rb->left - 1 : 0, rb->right, radius, half, counts[label] + 2);
            }
        }
        free_boundary(&gt_boundary);
        free_boundary(&res_boundary);
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyList_New(num_objects);
    if (result == NULL) goto done;
    for (int label = 1; label <= num_objects; label++) {
        PyObject *item = Py_BuildValue("(LLLLLLL)", inter[label], gt_boxes[label].area, res_boxes[label].area,
                                       counts[label][0], counts[label][1], counts[label][2], counts[label][3]);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, label - 1, item);
    }
done:
    PyBuffer_Release(&gt_buffer);
    PyBuffer_Release(&res_buffer);
    return result;
}

static PyMethodDef methods[] = {
    {"unfilter", unfilter, METH_VARARGS, "PNG rows (filter byte + pixels, 8-bit single channel) -> pixels."},
    {"object_counts", object_counts, METH_VARARGS, "J and F pixel counts of objects 1..K in one frame."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }

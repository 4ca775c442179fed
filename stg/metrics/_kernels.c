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
#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

/* ------------------------------------------------------------------ run-length rows */

/* A frame as runs of equal values per row: masks are a few runs per row, so everything after decoding touches
 * runs and 64-pixel words, never single pixels again. */
typedef struct {
    Py_ssize_t width, height;
    Py_ssize_t *row_start; /* height + 1 offsets into start/value */
    int32_t *start;        /* first column of each run; a run ends where the next one of its row starts */
    uint8_t *value;
    Py_ssize_t count, capacity;
} Runs;

static void runs_free(Runs *runs) {
    free(runs->row_start);
    free(runs->start);
    free(runs->value);
    runs->row_start = NULL;
    runs->start = NULL;
    runs->value = NULL;
}

static int runs_init(Runs *runs, Py_ssize_t width, Py_ssize_t height) {
    runs->width = width;
    runs->height = height;
    runs->count = 0;
    runs->capacity = height * 8 + 64;
    runs->row_start = malloc(sizeof(Py_ssize_t) * (size_t)(height + 1));
    runs->start = malloc(sizeof(int32_t) * (size_t)runs->capacity);
    runs->value = malloc((size_t)runs->capacity);
    if (runs->row_start == NULL || runs->start == NULL || runs->value == NULL) {
        runs_free(runs);
        return -1;
    }
    return 0;
}

static int push_run(Runs *runs, Py_ssize_t x, uint8_t value) {
    if (runs->count == runs->capacity) {
        Py_ssize_t capacity = runs->capacity * 2;
        int32_t *start = realloc(runs->start, sizeof(int32_t) * (size_t)capacity);
        if (start == NULL) return -1;
        runs->start = start;
        uint8_t *values = realloc(runs->value, (size_t)capacity);
        if (values == NULL) return -1;
        runs->value = values;
        runs->capacity = capacity;
    }
    runs->start[runs->count] = (int32_t)x;
    runs->value[runs->count] = value;
    runs->count++;
    return 0;
}

static inline uint64_t load_word(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

/* Are the 32 bytes at p all equal to the byte repeated in `pattern`? One branch for four words. */
static inline int same_32(const uint8_t *p, uint64_t pattern) {
    return ((load_word(p) ^ pattern) | (load_word(p + 8) ^ pattern) | (load_word(p + 16) ^ pattern) |
            (load_word(p + 24) ^ pattern)) == 0;
}

/* Appends the runs of one row of pixel values; equal bytes are skipped eight at a time. */
static int runs_of_pixels(Runs *runs, const uint8_t *pixels) {
    Py_ssize_t width = runs->width, x = 0;
    while (x < width) {
        uint8_t value = pixels[x];
        if (push_run(runs, x, value)) return -1;
        uint64_t pattern = 0x0101010101010101ULL * value;
        x++;
        while (x + 32 <= width && same_32(pixels + x, pattern)) x += 32;
        while (x + 8 <= width && load_word(pixels + x) == pattern) x += 8;
        while (x < width && pixels[x] == value) x++;
    }
    return 0;
}

/* Appends the runs of one row filtered "Sub" (each byte the difference to its left neighbour): every nonzero
 * difference starts a run, and zero differences are skipped eight at a time without decoding them. */
static int runs_of_sub_row(Runs *runs, const uint8_t *deltas) {
    Py_ssize_t width = runs->width, x = 1;
    uint8_t value = deltas[0];
    if (push_run(runs, 0, value)) return -1;
    while (x < width) {
        while (x + 32 <= width && same_32(deltas + x, 0)) x += 32;
        while (x + 8 <= width && load_word(deltas + x) == 0) x += 8;
        while (x < width && deltas[x] == 0) x++;
        if (x == width) break;
        value = (uint8_t)(value + deltas[x]);
        if (push_run(runs, x, value)) return -1;
        x++;
    }
    return 0;
}

/* Writes row y's pixel values from its runs. */
static void pixels_of_row(const Runs *runs, Py_ssize_t y, uint8_t *pixels) {
    for (Py_ssize_t i = runs->row_start[y]; i < runs->row_start[y + 1]; i++) {
        Py_ssize_t end = i + 1 < runs->row_start[y + 1] ? runs->start[i + 1] : runs->width;
        memset(pixels + runs->start[i], runs->value[i], (size_t)(end - runs->start[i]));
    }
}

/* Unfilters one row filtered Up (2), Average (3) or Paeth (4) into `row`, given the row above (NULL: none). */
static void unfilter_row(uint8_t kind, const uint8_t *in, const uint8_t *up, uint8_t *row, Py_ssize_t width) {
    for (Py_ssize_t x = 0; x < width; x++) {
        int left = x > 0 ? row[x - 1] : 0, above = up ? up[x] : 0, corner = (x > 0 && up) ? up[x - 1] : 0;
        int predicted = kind == 2 ? above : kind == 3 ? (left + above) >> 1 : paeth(left, above, corner);
        row[x] = (uint8_t)(in[x] + predicted);
    }
}

/* Runs of PNG-filtered rows (filter byte + pixels, 8-bit single channel). Returns 1 for an unknown filter type,
 * -1 when out of memory, 0 when done. None and Sub rows (all PIL and OpenCV masks use) are read in place; a row
 * filtered otherwise is decoded into a row buffer, from the row above (rebuilt from its runs when needed). */
static int runs_of_png_rows(Runs *runs, const uint8_t *rows) {
    Py_ssize_t width = runs->width, height = runs->height;
    uint8_t *buffers = malloc((size_t)(2 * width));
    if (buffers == NULL) return -1;
    const uint8_t *above = NULL; /* pixel values of row y - 1 when at hand */
    int status = 0;
    for (Py_ssize_t y = 0; y < height && status == 0; y++) {
        const uint8_t *line = rows + y * (width + 1), *in = line + 1;
        uint8_t kind = line[0];
        runs->row_start[y] = runs->count;
        if (kind == 0) {
            status = runs_of_pixels(runs, in);
            above = in;
        } else if (kind == 1) {
            status = runs_of_sub_row(runs, in);
            above = NULL;
        } else if (kind <= 4) {
            uint8_t *row = buffers + (above == buffers ? width : 0);
            if (y > 0 && above == NULL) {
                uint8_t *previous = buffers + (row == buffers ? width : 0);
                pixels_of_row(runs, y - 1, previous);
                above = previous;
            }
            unfilter_row(kind, in, y > 0 ? above : NULL, row, width);
            status = runs_of_pixels(runs, row);
            above = row;
        } else {
            status = 1;
        }
    }
    runs->row_start[height] = runs->count;
    free(buffers);
    return status;
}

/* Runs of an unfiltered label map. */
static int runs_of_labels(Runs *runs, const uint8_t *labels) {
    for (Py_ssize_t y = 0; y < runs->height; y++) {
        runs->row_start[y] = runs->count;
        if (runs_of_pixels(runs, labels + y * runs->width)) return -1;
    }
    runs->row_start[runs->height] = runs->count;
    return 0;
}

static int max_value(const Runs *runs) {
    int highest = 0;
    for (Py_ssize_t i = 0; i < runs->count; i++) highest = runs->value[i] > highest ? runs->value[i] : highest;
    return highest;
}

/* ------------------------------------------------------------------ J and F counts per object */

typedef struct {
    Py_ssize_t top, bottom, left, right; /* bounding box, bottom/right exclusive; top = -1 when empty */
    long long area;
} Box;

/* Area and bounding box of every label (label_of maps pixel values to labels, 0 = no object). */
static void label_boxes(const Runs *runs, const uint8_t *label_of, Box *boxes) {
    for (Py_ssize_t y = 0; y < runs->height; y++) {
        Py_ssize_t last = runs->row_start[y + 1];
        for (Py_ssize_t i = runs->row_start[y]; i < last; i++) {
            uint8_t label = label_of[runs->value[i]];
            if (!label) continue;
            Py_ssize_t x0 = runs->start[i], x1 = i + 1 < last ? runs->start[i + 1] : runs->width;
            Box *box = &boxes[label];
            if (box->top < 0) {
                box->top = y;
                box->left = x0;
                box->right = x1;
            } else {
                box->left = x0 < box->left ? x0 : box->left;
                box->right = x1 > box->right ? x1 : box->right;
            }
            box->bottom = y + 1;
            box->area += x1 - x0;
        }
    }
}

/* Sets bits [a, b) of a bit row (bit x of word x / 64 = column x). */
static inline void set_bit_range(uint64_t *row, Py_ssize_t a, Py_ssize_t b) {
    if (a >= b) return;
    Py_ssize_t first = a >> 6, last = (b - 1) >> 6;
    uint64_t head = ~0ULL << (a & 63), tail = ~0ULL >> (63 - ((b - 1) & 63));
    if (first == last) {
        row[first] |= head & tail;
        return;
    }
    row[first] |= head;
    for (Py_ssize_t w = first + 1; w < last; w++) row[w] = ~0ULL;
    row[last] |= tail;
}

/* A window of bit rows: image rows top..top+rows-1, image words word0..word0+words-1. */
typedef struct {
    Py_ssize_t top, rows, word0, words;
} Window;

/* Bit rows of the pixels whose label is `label`, in a zeroed window holding all of them. */
static void object_bits(const Runs *runs, const uint8_t *label_of, uint8_t label, const Window *window,
                        uint64_t *bits) {
    Py_ssize_t shift = window->word0 * 64;
    for (Py_ssize_t r = 0; r < window->rows; r++) {
        Py_ssize_t y = window->top + r, last = runs->row_start[y + 1];
        for (Py_ssize_t i = runs->row_start[y]; i < last; i++) {
            if (label_of[runs->value[i]] != label) continue;
            Py_ssize_t x1 = i + 1 < last ? runs->start[i + 1] : runs->width;
            set_bit_range(bits + r * window->words, runs->start[i] - shift, x1 - shift);
        }
    }
}

/* The official _seg2bmap of an object's bit rows, 64 pixels per step: a pixel is a boundary pixel when its 2x2
 * block (right, below, below-right) is not constant; on the image's last row only the right neighbour counts, on
 * its last column only the one below, and the bottom-right pixel never. The window holds a row above and below
 * the object where the image has them (zero rows), so its edges are the image's or zeros. Returns the count. */
static long long boundary_bits(const uint64_t *object, uint64_t *out, const Window *window, Py_ssize_t width,
                               Py_ssize_t height) {
    Py_ssize_t words = window->words, last_word = (width - 1) / 64 - window->word0;
    uint64_t last_column = (uint64_t)1 << ((width - 1) & 63);
    long long count = 0;
    for (Py_ssize_t r = 0; r < window->rows; r++) {
        const uint64_t *a = object + r * words;
        int image_last_row = window->top + r == height - 1;
        const uint64_t *b = r + 1 < window->rows ? a + words : image_last_row ? a : NULL;
        uint64_t *row = out + r * words;
        for (Py_ssize_t w = 0; w < words; w++) {
            uint64_t here = a[w], below = b ? b[w] : 0;
            uint64_t right = (here >> 1) | (w + 1 < words ? a[w + 1] << 63 : 0);
            uint64_t below_right = (below >> 1) | (b && w + 1 < words ? b[w + 1] << 63 : 0);
            uint64_t sideways = (here ^ right) | (here ^ below_right);
            if (w == last_word) sideways &= ~last_column;
            row[w] = (here ^ below) | sideways;
            count += __builtin_popcountll(row[w]);
        }
    }
    return count;
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

/* The window of bit rows holding an object's GT and result pixels and every boundary pixel they make: their
 * boxes' union grown by one row and column toward the origin and one row down, whole words. */
static Window object_window(const Box *gt, const Box *res, Py_ssize_t height) {
    Py_ssize_t top = PY_SSIZE_T_MAX, bottom = 0, left = PY_SSIZE_T_MAX, right = 0;
    const Box *boxes[2] = {gt, res};
    for (int side = 0; side < 2; side++) {
        const Box *box = boxes[side];
        if (box->top < 0) continue;
        top = box->top < top ? box->top : top;
        bottom = box->bottom > bottom ? box->bottom : bottom;
        left = box->left < left ? box->left : left;
        right = box->right > right ? box->right : right;
    }
    top = top > 0 ? top - 1 : 0;
    left = left > 0 ? left - 1 : 0;
    bottom = bottom < height ? bottom + 1 : height;
    Window window = {top, bottom - top, left / 64, (right - 1) / 64 - left / 64 + 1};
    return window;
}

/* counts[0..6] of one object present in the GT, the result or both: intersection, GT area, result area, GT and
 * result boundary pixels, result boundary pixels near the GT boundary, GT boundary pixels near the result's.
 * Returns -1 when out of memory. */
static int count_object(const Runs *gt, const Runs *res, const uint8_t *gt_label_of, const uint8_t *res_label_of,
                        uint8_t label, const Box *gt_box, const Box *res_box, int radius, const int *half,
                        long long counts[7]) {
    Window window = object_window(gt_box, res_box, gt->height);
    Py_ssize_t plane = window.rows * window.words;
    uint64_t *buffer = malloc(sizeof(uint64_t) * (size_t)plane * (size_t)(radius + 5));
    if (buffer == NULL) return -1;
    uint64_t *gt_bits = buffer, *res_bits = buffer + plane, *gt_edge = buffer + 2 * plane;
    uint64_t *res_edge = buffer + 3 * plane, *levels = buffer + 4 * plane;
    memset(buffer, 0, sizeof(uint64_t) * (size_t)(2 * plane));
    object_bits(gt, gt_label_of, label, &window, gt_bits);
    object_bits(res, res_label_of, label, &window, res_bits);
    long long inter = 0;
    if (gt_box->top >= 0 && res_box->top >= 0)
        for (Py_ssize_t i = 0; i < plane; i++) inter += __builtin_popcountll(gt_bits[i] & res_bits[i]);
    counts[0] = inter;
    counts[1] = gt_box->area;
    counts[2] = res_box->area;
    counts[3] = boundary_bits(gt_bits, gt_edge, &window, gt->width, gt->height);
    counts[4] = boundary_bits(res_bits, res_edge, &window, gt->width, gt->height);
    counts[5] = counts[6] = 0;
    if (counts[3] && counts[4]) {
        counts[5] = near_count(res_edge, gt_edge, levels, window.rows, window.words, radius, half);
        counts[6] = near_count(gt_edge, res_edge, levels, window.rows, window.words, radius, half);
    }
    free(buffer);
    return 0;
}

/* Counts of objects 1..K from the runs of both frames (run time without the GIL). Returns -1 when out of memory. */
static int count_objects(const Runs *gt, const Runs *res, const uint8_t *gt_label_of, const uint8_t *res_label_of,
                         int num_objects, int radius, long long (*counts)[7]) {
    Box gt_boxes[256], res_boxes[256];
    int half[251];
    for (int i = 0; i < 256; i++) gt_boxes[i] = res_boxes[i] = (Box){-1, -1, -1, -1, 0};
    for (int dy = 0; dy <= radius; dy++) {
        int h = 0;
        while ((long)(h + 1) * (h + 1) + (long)dy * dy <= (long)radius * radius) h++;
        half[dy] = h;
    }
    label_boxes(gt, gt_label_of, gt_boxes);
    label_boxes(res, res_label_of, res_boxes);
    for (int label = 1; label <= num_objects; label++) {
        memset(counts[label - 1], 0, sizeof counts[label - 1]);
        if (gt_boxes[label].top < 0 && res_boxes[label].top < 0) continue;
        if (count_object(gt, res, gt_label_of, res_label_of, (uint8_t)label, &gt_boxes[label], &res_boxes[label],
                         radius, half, counts[label - 1]))
            return -1;
    }
    return 0;
}

/* label_of[value]: the value itself for 1..K, 0 (no object) otherwise, as the official one-hot over 1..K. */
static void labels_up_to(int num_objects, uint8_t *label_of) {
    for (int value = 0; value < 256; value++) label_of[value] = value <= num_objects ? (uint8_t)value : 0;
}

static int check_counting_args(Py_ssize_t width, Py_ssize_t height, int num_objects, int radius) {
    if (width <= 0 || height <= 0 || width > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "width and height must be positive");
        return -1;
    }
    if (num_objects < 0 || num_objects > 254 || radius < 0 || radius > 250) {
        PyErr_SetString(PyExc_ValueError, "num_objects must be in 0..254 and radius in 0..250");
        return -1;
    }
    return 0;
}

static PyObject *counts_list(long long (*counts)[7], int num_objects) {
    PyObject *result = PyList_New(num_objects);
    if (result == NULL) return NULL;
    for (int i = 0; i < num_objects; i++) {
        long long *c = counts[i];
        PyObject *item = Py_BuildValue("(LLLLLLL)", c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
        if (item == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, item);
    }
    return result;
}

/* Both entry points below: two frames (label maps, or the inflated rows of two PNGs) -> runs -> counts of objects
 * 1..K. Label maps count their values as labels; PNG rows also return both frames' highest values (the caller
 * rejects a frame by them), or None for an unknown filter type. */
static PyObject *counts_of_frames(PyObject *args, int png) {
    Py_buffer gt_buffer, res_buffer;
    Py_ssize_t width, height;
    int num_objects, radius, gt_rule = 0;
    if (png ? !PyArg_ParseTuple(args, "y*y*nniii", &gt_buffer, &res_buffer, &width, &height, &num_objects, &radius,
                                &gt_rule)
            : !PyArg_ParseTuple(args, "y*y*nnii", &gt_buffer, &res_buffer, &width, &height, &num_objects, &radius))
        return NULL;
    PyObject *result = NULL;
    long long counts[254][7];
    uint8_t gt_label_of[256], res_label_of[256];
    Runs gt = {0}, res = {0};
    int status = 0, gt_max = 0, res_max = 0;
    if (check_counting_args(width, height, num_objects, radius)) goto done;
    Py_ssize_t size = height * (png ? width + 1 : width);
    if (gt_buffer.len != size || res_buffer.len != size) {
        PyErr_SetString(PyExc_ValueError, png ? "filtered rows do not match width and height"
                                              : "label maps do not match width and height");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    status = runs_init(&gt, width, height) || runs_init(&res, width, height) ? -1 : 0;
    if (status == 0) status = png ? runs_of_png_rows(&gt, gt_buffer.buf) : runs_of_labels(&gt, gt_buffer.buf);
    if (status == 0) status = png ? runs_of_png_rows(&res, res_buffer.buf) : runs_of_labels(&res, res_buffer.buf);
    if (status == 0) {
        gt_max = max_value(&gt);
        res_max = max_value(&res);
        labels_up_to(num_objects, res_label_of);
        for (int value = 0; value < 256; value++) {
            int label = gt_rule == 0 ? value : gt_max <= 1 ? value : value > 127;
            gt_label_of[value] = label <= num_objects ? (uint8_t)label : 0;
        }
        status = count_objects(&gt, &res, gt_label_of, res_label_of, num_objects, radius, counts);
    }
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_NoMemory();
    } else if (status > 0) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        result = counts_list(counts, num_objects);
        if (png && result != NULL) result = Py_BuildValue("(Nii)", result, gt_max, res_max);
    }
done:
    runs_free(&gt);
    runs_free(&res);
    PyBuffer_Release(&gt_buffer);
    PyBuffer_Release(&res_buffer);
    return result;
}

/* object_counts(gt, res, width, height, num_objects, radius) -> list of (intersection, GT area, result area,
 * GT boundary pixels, result boundary pixels, result boundary pixels near the GT boundary, GT boundary pixels
 * near the result boundary) for objects 1..K. Label maps are uint8, row-major; labels above K count as no
 * object. */
static PyObject *object_counts(PyObject *self, PyObject *args) {
    (void)self;
    return counts_of_frames(args, 0);
}

/* png_counts(gt_rows, res_rows, width, height, num_objects, radius, gt_rule) -> (object_counts' list, highest GT
 * value, highest result value), or None when a row uses an unknown filter type. The rows are the inflated image
 * data of two 8-bit single-channel PNGs (a filter byte per row), decoded here straight to runs. Result values
 * above K count as no object (the caller rejects the frame by the highest value). gt_rule 0: GT values are
 * labels (void 255 and values above K: no object); 1: DAVIS 2016's 0/255 masks, foreground above 127, or 0/1
 * when no value exceeds 1. */
static PyObject *png_counts(PyObject *self, PyObject *args) {
    (void)self;
    return counts_of_frames(args, 1);
}

/* keep_freed_memory() -> True where the C library's allocator was told to keep freed memory (glibc), else False.
 * Each frame inflates two frame-sized buffers (about 400 kB each at 480p) and frees them: glibc maps such blocks
 * anew, or returns the top of its heap, every time, and faulting the fresh pages in again cost a worker
 * about as much time as the scoring itself. Served from the heap and kept, they are reused. */
static PyObject *keep_freed_memory(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
    if (mallopt(M_MMAP_THRESHOLD, 16 << 20) && mallopt(M_TRIM_THRESHOLD, 64 << 20)) Py_RETURN_TRUE;
#endif
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"unfilter", unfilter, METH_VARARGS, "PNG rows (filter byte + pixels, 8-bit single channel) -> pixels."},
    {"object_counts", object_counts, METH_VARARGS, "J and F pixel counts of objects 1..K in one frame."},
    {"keep_freed_memory", keep_freed_memory, METH_NOARGS, "Let the allocator keep freed frame buffers (glibc)."},
    {"png_counts", png_counts, METH_VARARGS, "object_counts straight from the inflated rows of two mask PNGs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }

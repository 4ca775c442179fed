# Class-agnostic box proposals per video: cache/<ds>/detect/<key>/<video>.zarr


def detect_settings(key):
    """The run's (variant-merged) detect settings behind a key."""
    return plan_for("detect", key).settings["detect"]


def detect_uses_gpu(key):
    settings = detect_settings(key)
    return settings.get("backend", "motion") in ("torchvision", "mmdet") and uses_gpu(DETECT_DEVICE)


# Execution-only knobs come from the global config as CLI flags, so they change neither keys nor params:
# the device, and the batch size of the globally configured backend (0: the backend's own default).
_DETECT = config["stages"].get("detect", {})
DETECT_DEVICE = _DETECT.get("device", "auto")
DETECT_BATCH = (_DETECT.get(_DETECT.get("backend", "motion")) or {}).get("batch_size", 0)


rule detect:
    input:
        dataset_input,
        unpack(upstream_stores("detect")),
    output:
        directory("cache/{ds}/detect/{key}/{video}.zarr"),
    params:
        settings=lambda wc: settings_json("detect", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
    resources:
        gpu=lambda wc: int(detect_uses_gpu(wc.key)),
    log:
        "cache/{ds}/logs/detect/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/detect/{key}/{video}.tsv"
    shell:
        "stg detect --dataset-root {params.root} --layout {params.layout} --split {params.split} "
        "--video {wildcards.video} --warp {input.warp} --settings {params.settings:q} --device {DETECT_DEVICE} "
        "--batch-size {DETECT_BATCH} --key {wildcards.key} --out {output} 2> {log}"

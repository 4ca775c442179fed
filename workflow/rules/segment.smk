# Proposal masks per video, one per detection box: cache/<ds>/segment/<key>/<video>.zarr
# Refinement pass k > 1 has its own key (its upstream differs) and the same path pattern.


def segment_uses_gpu(key):
    """deeplab on a GPU holds one; grabcut is CPU only."""
    plan, node = plan_node("segment", key)
    return plan.settings[node].get("backend", "grabcut") == "deeplab" and uses_gpu(SEGMENT_DEVICE)


# Execution-only knobs come from the global config as CLI flags, so they change neither keys nor params:
# the device and deeplab's batch size (0: the backend's own default).
_SEGMENT = config["stages"].get("segment", {})
SEGMENT_DEVICE = _SEGMENT.get("device", "auto")
SEGMENT_BATCH = (_SEGMENT.get("deeplab") or {}).get("batch_size", 0)


rule segment:
    input:
        dataset_input,
        unpack(upstream_stores("segment")),
    output:
        directory("cache/{ds}/segment/{key}/{video}.zarr"),
    params:
        settings=lambda wc: settings_json("segment", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
    resources:
        gpu=lambda wc: int(segment_uses_gpu(wc.key)),
    log:
        "cache/{ds}/logs/segment/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/segment/{key}/{video}.tsv"
    shell:
        "stg segment --dataset-root {params.root} --layout {params.layout} --split {params.split} "
        "--video {wildcards.video} --detect {input.detect} --warp {input.warp} --settings {params.settings:q} "
        "--device {SEGMENT_DEVICE} --batch-size {SEGMENT_BATCH} --key {wildcards.key} --out {output} 2> {log}"

# STG-Net's graph stage per video (sequential over frames): cache/<ds>/graph/<key>/<video>.zarr, a label store.
# Refinement pass k > 1 has its own key (its upstream differs) and the same path pattern.


def graph_needs_features(key):
    """Whether the job loads the CNN (spatial graph with l > 0, or the temporal graph)."""
    settings = plan_node("graph", key)[0].settings["graph"]
    spatial = settings.get("spatial", True) and settings.get("spatial_iterations", 2) > 0
    return bool(settings.get("temporal", True) or spatial)


# The device is execution-only: it comes from the global config as a CLI flag (no key, no params change).
GRAPH_DEVICE = config["stages"].get("graph", {}).get("device", "auto")


rule graph:
    input:
        dataset_input,
        unpack(upstream_stores("graph")),
    output:
        directory("cache/{ds}/graph/{key}/{video}.zarr"),
    params:
        settings=lambda wc: settings_json("graph", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
    threads: 1
    resources:
        gpu=lambda wc: int(graph_needs_features(wc.key) and uses_gpu(GRAPH_DEVICE)),
    log:
        "cache/{ds}/logs/graph/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/graph/{key}/{video}.tsv"
    shell:
        "stg graph --dataset-root {params.root} --layout {params.layout} --split {params.split} "
        "--video {wildcards.video} --segment {input.segment} --warp {input.warp} --flow {input.flow} "
        "--settings {params.settings:q} --device {GRAPH_DEVICE} --threads {threads} --key {wildcards.key} "
        "--out {output} 2> {log}"

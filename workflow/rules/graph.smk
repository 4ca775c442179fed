# STG-Net's graph stage per video (sequential over frames): cache/<ds>/graph/<key>/<video>.zarr, a label store.
# Refinement pass k > 1 has its own key (its upstream differs) and the same path pattern.


rule graph:
    input:
        dataset_input,
        unpack(upstream_stores("graph")),
    output:
        directory("cache/{ds}/graph/{key}/{video}.zarr"),
    log:
        "cache/{ds}/logs/graph/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/graph/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    threads: 1
    resources:
        gpu=lambda wc: int(stage_uses_gpu("graph", plan_for("graph", wc.key).settings["graph"], GRAPH_DEVICE)),
    params:
        device=GRAPH_DEVICE,
        settings=lambda wc: settings_json("graph", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
        stores=store_arguments("graph"),
    shell:
        "stg graph --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--video {wildcards.video:q} {params.stores} "
        "--settings {params.settings:q} --device {params.device:q} --threads {threads:q} --key {wildcards.key:q} "
        "--out {output:q} 2> {log:q}"

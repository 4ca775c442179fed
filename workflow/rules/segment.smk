# Proposal masks per video, one per detection box: cache/<ds>/segment/<key>/<video>.zarr
# Refinement pass k > 1 has its own key (its upstream differs) and the same path pattern.


rule segment:
    input:
        dataset_input,
        unpack(upstream_stores("segment")),
    output:
        directory("cache/{ds}/segment/{key}/{video}.zarr"),
    log:
        "cache/{ds}/logs/segment/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/segment/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    resources:
        gpu=lambda wc: int(
            stage_uses_gpu(
                "segment",
                plan_for("segment", wc.key).settings["segment"],
                SEGMENT_DEVICE,
            )
        ),
    params:
        batch_size=SEGMENT_BATCH,
        device=SEGMENT_DEVICE,
        settings=lambda wc: settings_json("segment", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
        online=online_argument("segment"),
    shell:
        "stg segment --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--video {wildcards.video:q} --detect {input.detect:q} --warp {input.warp:q} --settings {params.settings:q} {params.online} "
        "--device {params.device:q} --batch-size {params.batch_size:q} --key {wildcards.key:q} --out {output:q} "
        "2> {log:q}"

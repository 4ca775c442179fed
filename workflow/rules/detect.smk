# Class-agnostic box proposals per video: cache/<ds>/detect/<key>/<video>.zarr


rule detect:
    input:
        dataset_input,
        unpack(upstream_stores("detect")),
    output:
        directory("cache/{ds}/detect/{key}/{video}.zarr"),
    log:
        "cache/{ds}/logs/detect/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/detect/{key}/{video}.tsv"
    conda:
        "../../envs/stg.yaml"
    resources:
        gpu=lambda wc: int(stage_uses_gpu("detect", plan_for("detect", wc.key).settings["detect"], DETECT_DEVICE)),
    params:
        batch_size=DETECT_BATCH,
        device=DETECT_DEVICE,
        settings=lambda wc: settings_json("detect", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
    shell:
        "stg detect --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--video {wildcards.video:q} --warp {input.warp:q} --settings {params.settings:q} --device {params.device:q} "
        "--batch-size {params.batch_size:q} --key {wildcards.key:q} --out {output:q} 2> {log:q}"

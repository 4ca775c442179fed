# Optical flow per video: cache/<ds>/flow/<key>/<video>.zarr


rule flow:
    input:
        dataset_input,
    output:
        directory("cache/{ds}/flow/{key}/{video}.zarr"),
    params:
        settings=lambda wc: settings_json("flow", wc.key),
        root=lambda wc: dataset_root(wc.ds),
        layout=lambda wc: dataset_layout(wc.ds),
        split=lambda wc: video_split(wc.ds, wc.video),
    resources:
        gpu=lambda wc: int(stage_uses_gpu("flow", plan_for("flow", wc.key).settings["flow"], config["stages"]["flow"]["device"])),
    log:
        "cache/{ds}/logs/flow/{key}/{video}.log",
    benchmark:
        "cache/{ds}/benchmarks/flow/{key}/{video}.tsv"
    shell:
        "stg flow --dataset-root {params.root} --layout {params.layout} --split {params.split} --video {wildcards.video} "
        "--settings {params.settings:q} --device {config[stages][flow][device]} --key {wildcards.key} "
        "--out {output} 2> {log}"

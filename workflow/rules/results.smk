# The run folder: results/<run>/ with Annotations/, the DAVIS CSVs, metrics.json and run.json.


rule metrics:
    input:
        unpack(lambda wc: {"labels": run_stores(wc)[final_stage(run_plan(wc))]}),
        benchmarks=run_benchmarks,
    output:
        directory("results/{run}"),
    log:
        "cache/logs/results/{run}.log",
    conda:
        "../../envs/stg.yaml"
    params:
        processes=config["metrics"]["processes"],
        plan=run_description,
        root=lambda wc: dataset_root(run_plan(wc).dataset),
        split=lambda wc: run_plan(wc).split,
        layout=lambda wc: dataset_layout(run_plan(wc).dataset),
    shell:
        "stg results --dataset-root {params.root:q} --layout {params.layout:q} --split {params.split:q} "
        "--labels {input.labels:q} "
        "--plan {params.plan:q} --benchmarks {input.benchmarks:q} --processes {params.processes:q} "
        "--out {output:q} 2> {log:q}"

# The run folder: results/<run>/ with Annotations/, the DAVIS CSVs, metrics.json and run.json.


def run_stores(wildcards):
    plan = run_plan(wildcards)
    videos = video_names(plan.dataset, plan.split)
    return {stage: [plan.store(stage, video) for video in videos] for stage in stage_chain(plan)}


def run_benchmarks(wildcards):
    plan = run_plan(wildcards)
    videos = video_names(plan.dataset, plan.split)
    files = [plan.benchmark(stage, video) for stage in stage_chain(plan) for video in videos]
    if is_synthetic(plan.dataset):
        files.append(f"cache/{plan.dataset}/benchmarks/synth/{plan.keys['dataset']}/dataset.tsv")
    return files


def run_description(wildcards):
    plan = run_plan(wildcards)
    settings = {stage: semantic_settings(stage, plan.settings[stage]) for stage in ["dataset", *stage_chain(plan)]}
    return json.dumps({"dataset": plan.dataset, "variant": plan.variant, "method": plan.method,
                       "description": config["variants"][plan.variant].get("description", ""),
                       "settings": settings, "keys": {s: plan.keys[s] for s in ["dataset", *stage_chain(plan)]},
                       "stores": run_stores(wildcards)}, sort_keys=True)


rule metrics:
    input:
        unpack(lambda wc: {"labels": run_stores(wc)[final_stage(run_plan(wc))]}),
        benchmarks=run_benchmarks,
    output:
        directory("results/{run}"),
    params:
        plan=run_description,
        root=lambda wc: dataset_root(run_plan(wc).dataset),
        split=lambda wc: run_plan(wc).split,
    log:
        "cache/logs/results/{run}.log",
    shell:
        "stg results --dataset-root {params.root} --split {params.split} --labels {input.labels} "
        "--plan {params.plan:q} --benchmarks {input.benchmarks} --processes {config[metrics][processes]} "
        "--out {output} 2> {log}"

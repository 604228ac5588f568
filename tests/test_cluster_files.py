"""The cluster artefacts: launcher YAML against Ray's own autoscaler schema, KubeRay manifests,
Dockerfiles and job entries. No cloud, cluster or Docker engine runs here; these check the files."""
import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from dockerfile_parse import DockerfileParser
from ray.autoscaler._private.util import prepare_config, validate_config

from mbrl_ray.config import apply_overrides, load_preset, validate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
RAY_SCHEMA = Path(ray.autoscaler.__file__).with_name("ray-schema.json")


def _yaml(path: str):
    return yaml.safe_load((ROOT / path).read_text())


def test_launcher_yaml_validates_against_rays_schema():
    config = _yaml("cluster/aws.yaml")
    jsonschema.validate(config, json.loads(RAY_SCHEMA.read_text()))
    validate_config(prepare_config(config))  # what `ray up` runs, with defaults filled in
    head = config["available_node_types"][config["head_node_type"]]
    assert head["node_config"]["InstanceType"].startswith(("g", "p"))  # the learner's GPU
    assert any(t["max_workers"] > t["min_workers"] for t in config["available_node_types"].values())
    start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start  # reachable through `ray dashboard` only


def test_launcher_schema_check_catches_a_bad_key():
    config = _yaml("cluster/aws.yaml")
    config["available_node_types"]["cpu_rollout"]["min_worker"] = 1  # misspelt
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, json.loads(RAY_SCHEMA.read_text()))


def test_kuberay_manifests_carry_what_rayjob_needs():
    cluster, job = _yaml("cluster/kuberay/raycluster.yaml"), _yaml("cluster/kuberay/rayjob.yaml")
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = cluster["spec"]
    assert spec["rayVersion"] == ray.__version__
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"  # never a public LoadBalancer
    assert "enableIngress" not in spec["headGroupSpec"]
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["resources"]["limits"]["nvidia.com/gpu"] == 1 and head["image"].endswith(":cuda")
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["template"]["spec"]["containers"][0]["image"].endswith(":cpu")
    # A RayJob needs an entrypoint and a cluster: here the RayCluster above, by selector.
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    assert job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["image"].endswith(":cpu")
    yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    _check_entrypoint(job["spec"]["entrypoint"].split())


def _check_entrypoint(argv: list[str]) -> None:
    """`mbrl-ray train PRESET [--run-dir D] key=value...` names a preset and valid keys."""
    assert argv[:2] == ["mbrl-ray", "train"], argv
    overrides = [a for a in argv[3:] if "=" in a and not a.startswith("--")]
    validate(apply_overrides(load_preset(argv[2]), overrides))


@pytest.mark.parametrize("stage, torch_index", [("cpu", "download.pytorch.org/whl/cpu"),
                                                ("cuda", None)])
def test_dockerfile_stages_parse_and_run_as_non_root(stage, torch_index):
    parser = DockerfileParser(str(ROOT / "docker" / "Dockerfile"))
    instructions = parser.structure
    starts = [i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM"]
    names = [instructions[i]["value"].split()[-1] for i in starts]
    assert names == ["base", "cpu", "cuda"]
    begin = starts[names.index(stage)]
    end = starts[names.index(stage) + 1] if stage != names[-1] else len(instructions)
    own, base = instructions[begin:end], instructions[starts[0]:starts[1]]
    runs = " ".join(ins["value"] for ins in own if ins["instruction"] == "RUN")
    assert "-c constraints.txt" in runs and "torch==2.13.0" in runs
    assert (torch_index in runs) if torch_index else "--index-url" not in runs
    users = [ins["value"] for ins in own if ins["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0")
    base_text = " ".join(ins["value"] for ins in base)
    assert all(lib in base_text for lib in ("libegl1", "libosmesa6", "MUJOCO_GL=egl"))
    for ins in base:
        if ins["instruction"] == "COPY":
            for src in ins["value"].split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} missing"


def test_job_entries_submit_valid_runs():
    """Every jobs/<preset>.sh names a preset, and its overrides validate."""
    for script in (ROOT / "jobs").glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
    benches = {"lst-figure3": "bench/lst_figure3.py"}  # jobs that run a bench, not a preset
    for stem, script in benches.items():
        assert script in (ROOT / "jobs" / f"{stem}.sh").read_text() and (ROOT / script).exists()
    entries = sorted(p for p in (ROOT / "jobs").glob("*.sh")
                     if p.stem not in ("submit", "resume", "ray_auth", *benches))
    assert entries
    for path in entries:
        text = path.read_text()
        preset = re.search(r'submit\.sh" (\S+)', text).group(1)
        overrides = re.findall(r"\b([a-z_]+\.[a-z_]+=\S+)", text)
        if "${task}" in preset:  # one entry for a family: its comment lists the tasks
            tasks = re.search(r"# TASK: ([^(]+)", text).group(1).replace("#", " ").split()
            presets = [preset.strip('"').replace("${task}", t) for t in tasks]
        else:
            assert preset == path.stem
            presets = [preset]
        for name in presets:
            validate(apply_overrides(load_preset(name), overrides))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    missing = subprocess.run(["bash", str(ROOT / "jobs" / "submit.sh"), "debug"],
                             capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and "RAY_ADDRESS" in missing.stderr

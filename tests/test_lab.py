"""The main job: ``keras-resnet-lab lab --quick`` end to end, resumable, checked in a browser."""

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from keras_resnet_lab.cli import main
from keras_resnet_lab.findings import FINDINGS, VERDICTS, from_dict, tally

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "report"
    code = main(["lab", "--quick", "--out", str(out)])
    return code, out


def test_lab_writes_report_summary_and_artifacts(lab_run):
    code, out = lab_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["seeds"] == [0, 1, 2] and summary["config"]["depth"] == 20
    # Every finding of the registry, each judged again here from its reported numbers.
    assert set(summary["findings"]) == set(FINDINGS)
    for key, data in summary["findings"].items():
        assert data["verdict"] in VERDICTS and data["claim"] == FINDINGS[key].claim
        assert from_dict(data).verdict == data["verdict"]
        for c in data["criteria"]:
            assert {"statistic", "estimate", "interval", "threshold", "verdict"} <= set(c)
        assert data["seeds"]
    assert summary["tally"] == tally(d["verdict"] for d in summary["findings"].values())
    assert sum(summary["tally"].values()) == len(FINDINGS)
    # Exact computations hold at any size: the Hessian at zero initialization.
    assert summary["findings"]["li_hessian"]["verdict"] == "held"
    # Seeded findings over three seeds, lab findings by bootstrap over the test examples.
    assert summary["findings"]["szegedy_scaling"]["seeds"] == [0, 1, 2]
    lesion = summary["findings"]["veit_lesion"]["criteria"][0]
    assert lesion["method"].startswith("bootstrap over 200 test examples")
    train = summary["steps"]["train"]
    assert len(train["residual"]["train_loss"]) == len(train["plain"]["train_loss"]) == 6
    assert train["residual"]["final_test_accuracy"] > 0.5
    for fmt in ("savedmodel", "onnx"):
        assert summary["steps"]["export"][fmt]["passed"]
        assert (out / "export" / fmt / "manifest.json").exists()
    for name in ("lesion", "paths", "refinement", "similarity_residual", "similarity_plain",
                 "estimation", "filters", "depth", "hessian", "multires", "highway", "scaling",
                 "sharing", "looks_linear", "shattering"):
        assert (out / "analysis" / f"{name}.json").exists()
        assert (out / "figures" / f"{name}.png").exists()
    # k deletions: at least 20 draws per k
    assert all(len(r["errors"]) >= 20 for r in summary["steps"]["analysis"]["lesion"]["random_k"])
    assert (out / "README.md").read_text().startswith("# keras-resnet-lab lab output")


def test_report_is_self_contained_and_reads_this_runs_numbers(lab_run):
    _, out = lab_run
    page = (out / "report.html").read_text()
    sources = re.findall(r"<img src='([^']*)'", page)
    assert len(sources) >= 18 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    summary = json.loads((out / "summary.json").read_text())
    accuracy = summary["steps"]["train"]["residual"]["final_test_accuracy"]
    assert f"{100 * accuracy:.1f}%" in page  # the paragraph quotes this run's number
    numbers = [int(n) for n in re.findall(r"<h2>(\d+)\. ", page)]
    assert numbers == list(range(1, 16))  # every section, numbered in order
    # every section has a verdict label: its findings' verdicts, or "descriptive"
    sections = re.findall(r"<section><h2>(.*?)</h2>(.*?)</section>", page, re.S)
    assert all("class='verdict" in body for _, body in sections[1:]), "a section lacks a label"
    # the key figures open with the tally, and every finding's paragraph is generated from
    # its numbers and rule
    tally_text = ", ".join(f"{summary['tally'][v]} {v}" for v in VERDICTS)
    assert f"<td>findings</td><td class='num'>{tally_text}</td>" in page
    for data in summary["findings"].values():
        assert html.escape(from_dict(data).describe()) in page


def test_rerun_refuses_without_force_and_resume_skips_finished_steps(lab_run, capsys):
    _, out = lab_run
    assert main(["lab", "--quick", "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err
    os.remove(out / "steps" / "report.json")
    os.remove(out / "report.html")
    assert main(["lab", "--quick", "--out", str(out), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("already done, skipped") == 4
    assert (out / "report.html").exists()


CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
const originalError = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); originalError(...a); };
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const result = {images: images.length,
                  broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
                  errors: window.__errors};
  document.body.setAttribute('data-check', JSON.stringify(result));
});
</script>"""


def test_report_renders_in_headless_chromium(lab_run, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    _, out = lab_run
    page = (out / "report.html").read_text().replace("<head>", "<head>" + CHECK, 1)
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
    dom = subprocess.run(flags + ["--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120)
    match = re.search(r"data-check=\"([^\"]*)\"", dom.stdout)
    assert match, dom.stderr[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["images"] >= 10 and result["broken"] == 0, result
    assert result["errors"] == []
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    shot = tmp_path / "report.png"
    subprocess.run(flags + ["--window-size=1200,1600", f"--screenshot={shot}",
                            (out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Scheduled(Exception):
    pass


def test_a_deep_lab_compares_its_lesions_with_a_plain_network_that_trains(tmp_path, monkeypatch):
    """ResNet-56's plain twin degrades (He et al.), so the lesion study compares the ResNet
    with plain-20, trained alike, as Veit et al. compared ResNet-110 with VGG-15; the quick
    lab's twin (depth 20) is that network already."""
    from keras_resnet_lab.lab import jobs, pipeline

    cfg = pipeline.LabConfig(out=str(tmp_path / "lab"), seed=4)
    assert cfg.networks() == {"residual": 56, "plain": 56, "lesion_plain": 20}
    assert cfg.lesion_plain == "lesion_plain" and jobs.LESION_PLAIN_DEPTH == 20
    quick = pipeline.LabConfig(out=str(tmp_path / "quick"), quick=True)
    assert quick.networks() == {"residual": 20, "plain": 20} and quick.lesion_plain == "plain"

    lab = pipeline.Lab(cfg, progress=None)
    scheduled = []

    def schedule(job_list, what):
        scheduled.extend(job_list)
        raise _Scheduled

    monkeypatch.setattr(lab, "_jobs", schedule)
    with pytest.raises(_Scheduled):
        lab.step_train()
    trained = {j.name: j.kwargs for j in scheduled if j.name.startswith("train ")}
    assert set(trained) == {"train residual", "train plain", "train lesion_plain"}
    shallow = trained["train lesion_plain"]
    assert (shallow["depth"], shallow["plain"]) == (20, True)
    for key in ("recipe_name", "epochs", "seed", "image_size", "dataset"):
        assert shallow[key] == trained["train plain"][key]  # trained alike
    assert shallow["out_dir"] == os.path.join(lab.out, "train", "lesion_plain")

    models = {kind: f"<{kind}>" for kind in cfg.networks()}
    monkeypatch.setattr(lab, "model", models.get)
    monkeypatch.setattr(lab, "test_sample", lambda count: ("x", "y"))
    seen = {}

    def analyse(residual, plain, data, **options):
        seen.update(options, residual=residual, plain=plain)
        raise _Scheduled

    monkeypatch.setattr(jobs, "analyse_pair", analyse)
    with pytest.raises(_Scheduled):
        lab.step_analysis()
    assert (seen["residual"], seen["plain"], seen["lesion_plain"]) == (
        "<residual>", "<plain>", "<lesion_plain>")

"""The report in a real headless Chromium (Debian's package) driven by Selenium.

CI installs ``chromium``, ``chromium-driver`` and selenium (see ``.ci/run``) and this
test must run there; elsewhere it is skipped only when they are missing.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [name for name, ok in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if not ok]
    if webdriver is None:
        missing.append("selenium")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {missing} are missing (.ci/run)")
        pytest.skip(
            f"not in CI and {', '.join(missing)} not installed (apt: chromium "
            "chromium-driver; pip: selenium)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the system driver: Selenium never downloads one
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _driver()
    yield driver
    driver.quit()


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_page_loads_draws_a_video_and_renders(browser, tiny_report, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(tiny_report.as_uri())
    assert console_errors(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#video-table tbody tr")
    assert len(rows) > 1
    assert browser.find_elements(By.CSS_SELECTOR, "#results-main td")
    # pick another video by clicking its row: its timeline is drawn
    target = rows[-1]
    name = target.find_element(By.CSS_SELECTOR, "td").text
    target.click()
    selected = browser.find_element(By.ID, "video-select")
    assert selected.find_element(By.CSS_SELECTOR, "option:checked").text == name
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline polyline")  # attention, T-CAS
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline rect.gt, #timeline rect.det")
    # sorting by a column reorders the table; the tIoU selector redraws without errors
    header = browser.find_element(By.CSS_SELECTOR, '#video-table th[data-key="n"]')
    header.click()
    names = [
        r.text for r in browser.find_elements(By.CSS_SELECTOR, "#video-table tbody td:first-child")
    ]
    assert names == sorted(names)
    browser.execute_script(
        "const s = document.getElementById('tiou-select'); s.value = 0;"
        "s.dispatchEvent(new Event('change'));"
    )
    assert console_errors(browser) == []
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_tables_draw_a_first_page_then_all(browser, tiny_report, tmp_path):
    """With thousands of videos only the first rows are drawn until asked."""
    import json
    import re

    from selenium.webdriver.common.by import By

    from hamnet.report.build import render

    text = tiny_report.read_text(encoding="utf-8")
    raw = re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1)
    payload = json.loads(raw)
    videos = payload["videos"]
    copies = 400 // len(videos) + 1
    payload["videos"] = [{**v, "n": f"{v['n']}-{k}"} for k in range(copies) for v in videos]
    total = len(payload["videos"])
    assert total > 300
    page = tmp_path / "long.html"
    page.write_text(render(payload), encoding="utf-8")
    browser.get(page.as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "#video-table tbody tr")) == 300
    browser.find_element(By.ID, "show-all").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#video-table tbody tr")) == total
    assert console_errors(browser) == []


HANDLER = "document.title='PWNED';window.pwned=1"
HOSTILE = [
    f'<img src=x onerror="{HANDLER}">',
    f"__TITLE__/script><img src=x onerror={HANDLER}>",  # the first release's placeholder
    f"{{{{TITLE}}}}{{{{DATA}}}}</script><svg onload={HANDLER}>",
    "a&amp;b \u2028 <!-- <script>",
]


def _hostile_page(tiny_report, tmp_path):
    """The tiny run's data with hostile class and video names, in a folder ending in '<'."""
    import json
    import re

    from hamnet.report.build import render

    text = tiny_report.read_text(encoding="utf-8")
    raw = re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1)
    payload = json.loads(raw)
    payload["classes"] = [
        HOSTILE[i % len(HOSTILE)] + str(i) for i in range(len(payload["classes"]))
    ]
    for i, video in enumerate(payload["videos"]):
        video["n"] = HOSTILE[i % len(HOSTILE)] + f"-{i}"
    payload["run"] = f"run {HOSTILE[0]} x<"
    payload["run_path"] = f"/tmp/{HOSTILE[2]}/x<"
    payload["run_summary"] |= {"method": HOSTILE[1], "command": HOSTILE[2], "commit": HOSTILE[0]}
    folder = tmp_path / "x<"
    folder.mkdir()
    page = folder / "report.html"
    page.write_text(render(payload), encoding="utf-8")
    return page, payload


def test_hostile_names_run_no_handler_and_render(browser, tiny_report, tmp_path):
    from selenium.webdriver.common.by import By

    from hamnet.report.run_record import page_title

    page, payload = _hostile_page(tiny_report, tmp_path)
    browser.get(page.as_uri())
    assert browser.execute_script("return window.pwned") is None
    title = page_title(payload)
    assert title.startswith(f"hamnet report: {payload['run']}, {HOSTILE[1]}")
    assert browser.title == title
    # every name is text, none became an element; a CSP violation would be logged as SEVERE
    assert browser.find_elements(By.CSS_SELECTOR, "body img[src='x'], body svg[onload]") == []
    assert console_errors(browser) == []
    assert browser.find_element(By.ID, "title").text == title
    assert HOSTILE[2] in browser.find_element(By.ID, "run-line").text
    cells = browser.find_elements(By.CSS_SELECTOR, "#video-table tbody td:first-child")
    names = sorted(v["n"] for v in payload["videos"])
    assert sorted(c.get_attribute("textContent") for c in cells) == names
    options = browser.find_elements(By.CSS_SELECTOR, "#video-select option")
    assert sorted(o.get_attribute("textContent") for o in options) == names
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline rect.gt, #timeline rect.det")


def test_policy_blocks_handlers_and_outside_scripts(browser, tiny_report, tmp_path):
    """Even markup that reached the page could not run: the CSP allows only the page's script."""
    from selenium.webdriver.common.by import By

    page, _ = _hostile_page(tiny_report, tmp_path)
    text = page.read_text(encoding="utf-8")
    assert 'http-equiv="Content-Security-Policy"' in text
    injected = text.replace(
        "<main>",
        f'<main><img src=x onerror="{HANDLER}"><script src="https://example.com/x.js">'
        f"</script><script>{HANDLER}</script>",
        1,
    )
    page.write_text(injected, encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.execute_script("return window.pwned") is None
    assert any("Content Security Policy" in m for m in console_errors(browser))
    assert browser.find_elements(By.CSS_SELECTOR, "#video-table tbody tr")


def _payload(page) -> dict:
    import json
    import re

    raw = re.search(r'id="report-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S)
    return json.loads(raw.group(1))


def _texts(browser, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return [e.get_attribute("textContent") for e in found]


def test_header_names_method_epochs_command_and_commit(browser, tiny_report, tiny_run):
    """The title says what was trained and for how long; the command and commit of run.json
    are on the page."""
    import json

    from selenium.webdriver.common.by import By

    record = json.loads((tiny_run / "run.json").read_text())
    browser.get(tiny_report.as_uri())
    assert browser.title == "hamnet report: demo-all, HAM-Net, 2 epochs"
    assert browser.find_element(By.ID, "title").text == browser.title
    line = browser.find_element(By.ID, "run-line").get_attribute("textContent")
    assert "status: finished" in line
    assert " ".join(record["command"][1:]) in line
    commit = record["software"].get("git_commit")
    if commit:  # run from a checkout
        assert f"commit {commit[:12]}" in line
    assert browser.find_element(By.CSS_SELECTOR, "#results-main tbody td").text == "HAM-Net"


def test_unfinished_run_says_so_in_the_title(browser, tiny_run, tmp_path):
    """A run whose config plans more epochs than its checkpoint holds is marked unfinished
    (built from the run folder: config.yaml, run.json and the test result)."""
    import shutil

    import yaml

    from hamnet.report.build import build_report

    run = tmp_path / "half"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns(".lock", "report.html"))
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["train"]["epochs"] = 5
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    browser.get(build_report(run).as_uri())
    assert browser.title == "hamnet report: half, HAM-Net, unfinished, 2 of 5 epochs"
    assert console_errors(browser) == []


def test_axes_fit_the_data_and_epochs_are_whole(browser, tiny_report, tmp_path):
    """AP per class ends on the first tick over the best class (not at 100); epoch ticks
    are whole numbers."""
    from hamnet.report.build import render

    payload = _payload(tiny_report)
    t = payload["tiou"].index(0.5)
    for k, name in enumerate(payload["result"]["per_class"]):
        payload["result"]["per_class"][name][t] = [0.07, 0.031, 0.0][k % 3]
    page = tmp_path / "scaled.html"
    page.write_text(render(payload), encoding="utf-8")
    browser.get(page.as_uri())
    # 7 % at most: nice step 2 (7 / 2 <= 5 ticks), ticks 0..6, then 8 covers 7
    assert _texts(browser, "#class-chart text.ytick") == ["0", "2", "4", "6", "8"]
    assert _texts(browser, "#loss-chart text.xtick") == ["1", "2"]  # was 1, 1.2, ... 2
    assert _texts(browser, "#eval-chart text.xtick") == ["2"]
    assert console_errors(browser) == []


def test_video_browser_draws_scale_labels_and_thresholds(browser, tiny_report, tiny_run):
    """The T-CAS lane has a 0-1 scale, ground-truth bars name their class, and the
    localization thresholds of the run's config are lines at their heights."""
    import yaml
    from selenium.webdriver.common.by import By

    thresholds = yaml.safe_load((tiny_run / "config.yaml").read_text())["localize"]["thresholds"]
    payload = _payload(tiny_report)
    browser.get(tiny_report.as_uri())
    assert _texts(browser, "#timeline text.sig-tick") == ["0", "0.5", "1"]
    selected = browser.find_element(By.ID, "video-select").get_attribute("value")
    chosen = payload["videos"][int(selected)]
    names = {payload["classes"][c] for _, _, c in chosen["g"]}
    labels = _texts(browser, "#timeline text.gt-label")
    assert labels and len(labels) <= len(chosen["g"])
    assert all(any(n.startswith(label.rstrip("…")) for n in names) for label in labels), labels
    panel = browser.find_element(By.CSS_SELECTOR, "#timeline rect.signal-panel")
    top, height = float(panel.get_attribute("y")), float(panel.get_attribute("height"))
    lines = browser.find_elements(By.CSS_SELECTOR, "#timeline line.threshold")
    drawn = [(top + height - float(line.get_attribute("y1"))) / height for line in lines]
    assert drawn == pytest.approx(thresholds, abs=1e-6)
    assert "localization thresholds (10)" in " ".join(_texts(browser, "#timeline text"))
    assert console_errors(browser) == []

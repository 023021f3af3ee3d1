"""The researcher's jobs and the GPU owner's page in a real browser (Debian's Chromium
through Playwright) against a node served as ``node start`` serves it: submit a job with
the upload form, see it in the list, open it, cancel it, then the provider page, where
the offer is changed with its form. Screenshots: jobs.png and provider.png
(``scripts/screenshots.sh`` puts them in docs/screenshots)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ailedger.compute.provider.standing import add_stake, set_offer, this_machine
from ailedger.node.service import announce
from tests.web.conftest import screenshot, sign_in
from tests.web.homes import WebNode

pytestmark = [pytest.mark.slow, pytest.mark.integration]
AIL = 10**18
# No provider runs here: a job asking for 64 cores stays open until it is cancelled.
JOB_TOML = (
    '[job]\nentry = "main.py"\nruntime = "python"\n'
    "[resources]\ncpu_cores = 64\nram_mb = 256\nmax_hours = 1\n"
    '[market]\nmax_price_per_hour = "1"\ndeadline_hours = 1\nredundancy = 1\n'
)


def submit(page: Any, bundle: Path) -> int:
    """Submit the bundle in ``bundle`` with the page's form; the job id it answers."""
    page.set_input_files(
        "#submit-job input[type=file]", [str(bundle / "job.toml"), str(bundle / "main.py")]
    )
    page.fill("#submit-job input[name=wait_s]", "0")
    page.click("#submit-job button[type=submit]")
    page.wait_for_selector("#submit-result .ok", timeout=60_000)
    posted = re.search(r"job (\d+) posted", page.inner_text("#submit-result"))
    assert posted, page.inner_text("#submit-result")
    return int(posted.group(1))


def test_a_job_is_submitted_listed_opened_and_cancelled_and_the_offer_changed(
    served_node: WebNode, browser: Any, tmp_path: Path
) -> None:
    node, home = served_node, served_node.session
    home.token.faucet(1_000 * AIL)
    announce(home, node.url)  # providers would fetch the bundle from this node
    add_stake(home, 100 * AIL)
    set_offer(home, this_machine(), 2 * AIL, 1, 1024)
    (tmp_path / "job.toml").write_text(JOB_TOML)
    (tmp_path / "main.py").write_text("print('hello from the job')\n")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm before cancelling
    try:
        sign_in(page, node)
        page.goto(f"{node.url}/research/jobs")
        job_id = submit(page, tmp_path)
        link = f'#job-table a[href="/research/jobs/{job_id}"]'
        page.wait_for_selector(link)  # the list was swapped in with the new job
        assert "open" in page.text_content("#job-list svg") or ""  # and the chart of states

        page.click(link)
        page.wait_for_url(f"{node.url}/research/jobs/{job_id}")
        assert "open" in page.inner_text("h1")
        assert page.locator("#log-poller").count() == 1  # logs are polled while it can run
        page.click("text=Cancel the job")
        page.wait_for_selector("h1 .state-cancelled", timeout=60_000)  # reloaded when done
        assert page.locator("#log-poller").count() == 0
        assert page.locator("text=Cancel the job").count() == 0

        page.goto(f"{node.url}/research/jobs")
        submit(page, tmp_path)  # one open, one cancelled: two bars
        page.goto(f"{node.url}/research/jobs")
        assert "cancelled" in page.text_content("#job-list svg") or ""
        screenshot(page, "jobs", tmp_path)

        page.goto(f"{node.url}/provider")
        assert "2 AIL per hour" in page.inner_text("#offer")
        page.fill("#offer-form input[name=price_per_hour]", "3")
        page.click("#offer-form button[type=submit]")
        page.locator("#offer").get_by_text("3 AIL per hour").wait_for(timeout=60_000)
        screenshot(page, "provider", tmp_path)
    finally:
        page.close()
    assert problems == [], problems  # no script error, nothing the CSP blocked

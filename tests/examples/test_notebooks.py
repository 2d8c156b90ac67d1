"""The notebooks in examples/ run top to bottom (nbclient, a real IPython kernel each) against
one live `conveyor up` shared by all four, on tiny inputs: two short calls, one short clip, a
small heart table and a small ratings table. The four run at the same time (most of each is
waiting for the server), once per module; each test asserts on what its notebook shows."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.pipelines.movies.data import synthetic_ratings
from conveyor.settings import load_settings
from support import wildlife_video
from support.calls_audio import ANGRY, HAPPY, make_call
from support.up import ConveyorUp

EXAMPLES = Path(__file__).parents[2] / "examples"
CELL_TIMEOUT = 600  # seconds; four notebooks share two cores with the server and its steps
# the first test that needs the notebooks sets up the server and runs all four (about 5 min at
# a load average of 35 on two cores): more than the suite's default 600 s per test may be needed
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
NEWEST_PER_USER = 8  # ratings per user kept from training: the movies notebook's audience


@dataclass(frozen=True)
class Live:
    url: str
    token: str
    inputs: Path
    up: ConveyorUp


def _ratings(folder: Path) -> Path:
    """Older ratings to train on; each user's newest ones as the audience file."""
    lines = synthetic_ratings(users=60, movies=120, per_user=30, seed=4).decode().splitlines()
    by_user: dict[str, list[str]] = {}
    for line in lines:
        by_user.setdefault(line.split(",")[0], []).append(line)
    older = [line for rows in by_user.values() for line in rows[:-NEWEST_PER_USER]]
    newer = [line for rows in by_user.values() for line in rows[-NEWEST_PER_USER:]]
    (folder / "newer-ratings.csv").write_text("\n".join(newer) + "\n")
    (folder / "ratings.csv").write_text("\n".join(older) + "\n")
    return folder / "ratings.csv"


def _configure(home: Path, inputs: Path) -> None:
    home.mkdir(parents=True, mode=0o700)
    (inputs / "heart.csv").write_bytes(synthetic_csv(80, seed=11))
    ratings = _ratings(inputs)
    (home / "conveyor.toml").write_text(
        f'[models.heart]\ndataset = "{inputs / "heart.csv"}"\nparams = {{ cv_folds = 2 }}\n'
        f'[models.movies]\ndataset = "{ratings}"\nparams = {{ factors = 8 }}\n'
    )


def _media(inputs: Path) -> None:
    calls = inputs / "calls"
    calls.mkdir()
    make_call(HAPPY[:2], calls, "anna-0412", stereo=True)  # happy with the new router
    make_call([ANGRY[0], ANGRY[3]], calls, "mark-0413", stereo=True)  # furious, terrible
    for part in calls.glob("*-parts"):
        shutil.rmtree(part)
    wildlife_video.crossing_clip(
        inputs / "fox-path.mp4", [((0.15, 0.55), (0.85, 0.45))], seconds=2.0
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, ray_cluster: str) -> Iterator[Live]:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; run scripts/test-services.sh")
    root = tmp_path_factory.mktemp("notebooks")
    inputs, home = root / "inputs", root / "home"
    inputs.mkdir()
    _configure(home, inputs)
    database = f"sqlite:///{root / 'conveyor.db'}"
    installation = Installation(load_settings(home, database_url=database))
    with installation.sessions.begin() as session:
        token = create_token(session, "notebooks", "admin")
    installation.close()
    up = ConveyorUp(
        home, {"CONVEYOR_DATABASE_URL": database}, "--no-inbox", "--ray-address", ray_cluster
    )
    try:
        _media(inputs)
        up.wait_until_healthy()
        yield Live(up.url, token, inputs, up)
    finally:
        up.stop()


def run_notebook(live: Live, name: str, **parameters: str) -> nbformat.NotebookNode:
    """Execute examples/NAME.ipynb in a fresh kernel whose environment names the server and
    the inputs; a failing cell fails the test with the cell and its traceback."""
    notebook = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    env = os.environ | {"CONVEYOR_URL": live.url, "CONVEYOR_TOKEN": live.token} | parameters
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(live.inputs)}},
    )
    try:
        client.execute(env=env)
    except Exception:
        print(live.up.output()[-6000:])
        raise
    finally:  # kept beside the server's log, with each cell's start and end in its metadata
        nbformat.write(notebook, live.inputs.parent / f"{name}.executed.ipynb")
    return notebook


Executed = dict[str, nbformat.NotebookNode | BaseException]
PARAMETERS: dict[str, Callable[[Path], dict[str, str]]] = {
    "calls": lambda inputs: {"CONVEYOR_EXAMPLE_CALLS": str(inputs / "calls")},
    "wildlife": lambda inputs: {"CONVEYOR_EXAMPLE_MEDIA": str(inputs / "fox-path.mp4")},
    "heart": lambda inputs: {},
    "movies": lambda inputs: {"CONVEYOR_EXAMPLE_AUDIENCE": str(inputs / "newer-ratings.csv")},
}


@pytest.fixture(scope="module")
def executed(live: Live) -> Executed:
    """Every notebook, run at the same time; each one's executed copy or its error."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(PARAMETERS)) as pool:
        futures = {
            name: pool.submit(run_notebook, live, name, **parameters(live.inputs))
            for name, parameters in PARAMETERS.items()
        }
    print(f"four notebooks in {time.monotonic() - started:.0f} s")
    return {name: future.exception() or future.result() for name, future in futures.items()}


def executed_notebook(executed: Executed, name: str) -> Any:
    found = executed[name]
    if isinstance(found, BaseException):
        raise found
    return found


def outputs(notebook: nbformat.NotebookNode, mime: str = "text/plain") -> str:
    """Everything the notebook shows as ``mime`` (streams count as text/plain), joined."""
    shown: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream" and mime == "text/plain":
                shown.append(output["text"])
            elif mime in output.get("data", {}):
                shown.append(str(output["data"][mime]))
    return "\n".join(shown)


def images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_notebooks_are_committed_without_outputs() -> None:
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_calls_notebook_charts_satisfaction_by_agent(executed: Executed) -> None:
    calls = executed_notebook(executed, "calls")
    text = outputs(calls)
    assert "2 recording(s)" in text
    assert "waiting 2/2" in text and "2 succeeded" in text  # the wait bar's last state
    found = dict(re.findall(r"agent (\w+): satisfaction ([\d.]+) over 1 call", text))
    assert set(found) == {"Anna", "Mark"}, text
    assert float(found["Anna"]) > float(found["Mark"])
    assert "mark-0413.wav (Mark):" in text  # the angry call is flagged, with its reasons
    assert images(calls) == 1
    assert "anna-0412.wav" in outputs(calls, "text/html")


def test_wildlife_notebook_shows_the_annotated_media(executed: Executed) -> None:
    wildlife = executed_notebook(executed, "wildlife")
    text = outputs(wildlife)
    assert "fox-path.mp4: succeeded" in text
    assert "fox-path.mp4: 1 track(s), counts {'mammal': 1}" in text
    shown = outputs(wildlife, "text/html")
    assert "<video" in shown and 'src="data:video/mp4;base64,' in shown  # embedded, inline
    assert images(wildlife) == 2  # the trajectory plot and the contact sheet


def test_heart_notebook_trains_compares_and_promotes(executed: Executed) -> None:
    heart = executed_notebook(executed, "heart")
    text = outputs(heart)
    registered = re.findall(r"^v(\d+): (champion|challenger) ", text, re.MULTILINE)
    assert len(registered) == 2, text
    assert re.search(r"^(promoted v\d+ over v\d+|v\d+ is already the champion) ", text, re.M)
    champion = re.search(r"^champion: v(\d+)$", text, re.MULTILINE)
    assert champion is not None
    assert re.search(rf"^v{champion.group(1)} says label [01]", text, re.MULTILINE)
    assert "heldout_roc_auc" in outputs(heart, "text/html")  # the comparison table
    assert images(heart) == 1


def test_movies_notebook_runs_an_ab_experiment(executed: Executed) -> None:
    movies = executed_notebook(executed, "movies")
    text = outputs(movies)
    trained = dict(re.findall(r"^(popularity|svd): v(\d+), ", text, re.MULTILINE))
    assert set(trained) == {"popularity", "svd"}, text
    watched = re.search(r"60 users, (\d+) watched a recommended movie", text)
    assert watched is not None and int(watched.group(1)) > 0
    # seeded ratings, a fixed salt and a deterministic audience: SVD wins clearly
    verdict = r"^ctr: svd: [\d.]+ \[.*\(\d+/\d+\) ahead, intervals separate from popularity"
    assert re.search(verdict, text, re.MULTILINE), text
    html = outputs(movies, "text/html")
    assert "experiment " in html and "popularity vs svd" in html
    assert "leader: svd; separated: True; champion now v" in text
    assert images(movies) == 1

"""Router artifacts: ``router.pt`` (torch.save of plain tensors: every member's state dict
and the token bank) + ``router.json`` (config, feature spec, task vocabulary, models,
training data hash, metrics, format version, sha256 of the weights file).

Writes are atomic (temp + rename). Loading checks the format version, the weights hash and
the feature spec, and refuses anything corrupted, truncated or mismatched with a one-line
`LrcalError` -- never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from lrcal import __version__
from lrcal.errors import LrcalError
from lrcal.features import FeatureSpec
from lrcal.jsonable import json_default
from lrcal.router.api import Router
from lrcal.router.cards import ModelCard, card_from_tensors, card_problem, card_to_tensors
from lrcal.router.config import RouterConfig
from lrcal.router.network import parameter_count
from lrcal.router.policy import DecisionRule
from lrcal.router.profiles import ProfilePrior
from lrcal.router.train import build_network

ARTIFACT_FORMAT = "lrcal-router"
ARTIFACT_FORMAT_VERSION = 1
WEIGHTS_NAME = "router.pt"
SIDECAR_NAME = "router.json"
STAGING_SUFFIX = ".staging"  # a new version directory is written here, then renamed into place


def remove_staging_leftovers(parent: str | Path) -> list[str]:
    """Delete the staging directories a killed save left in ``parent`` (hidden, ``.staging``);
    call it only while no other save can be running there (`lrcal router train` holds a lock)."""
    import shutil

    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(STAGING_SUFFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _payload(router: Router) -> dict:
    return {
        "members": [{k: v.detach().clone() for k, v in net.state_dict().items()} for net in router.members],
        "cards": {name: card_to_tensors(card) for name, card in router.cards.items()},
    }


def save_router(router: Router, directory: str | Path) -> dict:
    """Write the artifact into ``directory`` (created; a new directory appears atomically).
    Returns the sidecar dict."""
    directory = Path(directory)
    buffer = io.BytesIO()
    torch.save(_payload(router), buffer)
    weights = buffer.getvalue()
    sidecar = {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "lrcal_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": router.config.to_dict(),
        "feature_spec": router.spec.to_dict(),
        "feature_spec_fingerprint": router.spec.fingerprint(),
        "task_vocab": list(router.spec.task_vocab),
        "models": [card.summary() for card in router.cards.values()],
        "ensemble": len(router.members),
        "parameters": parameter_count(router.members[0]),
        "info": router.info,
        "profile_prior": router.profile_prior.to_dict(),
        "decision_rule": router.decision_rule.to_dict(),
        "weights_file": WEIGHTS_NAME,
        "weights_bytes": len(weights),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    text = json.dumps(sidecar, indent=2, ensure_ascii=False, default=json_default).encode("utf-8")
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=STAGING_SUFFIX, dir=directory.parent))
        try:
            (staging / WEIGHTS_NAME).write_bytes(weights)
            (staging / SIDECAR_NAME).write_bytes(text)
            os.rename(staging, directory)
        except BaseException:
            for child in staging.glob("*"):
                child.unlink(missing_ok=True)
            staging.rmdir()
            raise
    else:
        # weights first: a crash in between leaves a hash mismatch that loading refuses
        _write_atomic(directory / WEIGHTS_NAME, weights)
        _write_atomic(directory / SIDECAR_NAME, text)
    return sidecar


def read_sidecar(path: str | Path) -> dict:
    """The sidecar of an artifact directory (or of a path to its router.json)."""
    path = Path(path)
    sidecar_path = path if path.suffix == ".json" else path / SIDECAR_NAME
    if not sidecar_path.exists():
        raise LrcalError(f"{path}: no router artifact ({SIDECAR_NAME} not found)")
    try:
        data = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LrcalError(f"{sidecar_path}: corrupted router sidecar ({exc.__class__.__name__})") from None
    except OSError as exc:
        raise LrcalError(f"{sidecar_path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(data, dict) or data.get("format") != ARTIFACT_FORMAT:
        raise LrcalError(f"{sidecar_path}: not an lrcal router artifact")
    version = data.get("format_version")
    if version != ARTIFACT_FORMAT_VERSION:
        raise LrcalError(
            f"{sidecar_path}: router artifact format version {version!r} is not supported "
            f"(this lrcal reads version {ARTIFACT_FORMAT_VERSION}); retrain with `lrcal router train`"
        )
    for key in ("config", "feature_spec", "weights_sha256", "weights_file", "models"):
        if key not in data:
            raise LrcalError(f"{sidecar_path}: router sidecar lacks '{key}'")
    return data


def load_router(path: str | Path, expected_spec: FeatureSpec | None = None) -> Router:
    """Load and verify an artifact. ``expected_spec``: refuse unless the artifact's feature
    spec is exactly this one."""
    path = Path(path)
    directory = path.parent if path.suffix == ".json" else path
    sidecar = read_sidecar(path)
    weights_path = directory / str(sidecar["weights_file"])
    if weights_path.name != sidecar["weights_file"] or not weights_path.is_file():
        raise LrcalError(f"{directory}: router weights file '{sidecar['weights_file']}' is missing")
    if _sha256(weights_path) != sidecar["weights_sha256"]:
        raise LrcalError(f"{weights_path}: weights do not match the sha256 in {SIDECAR_NAME} (corrupted or truncated file)")
    config = RouterConfig.from_dict(sidecar["config"])
    spec = FeatureSpec.from_dict(sidecar["feature_spec"])
    if expected_spec is not None:
        spec.check_same(expected_spec, what=f"router artifact {directory}")
    try:
        payload = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a corrupted artifact
        raise LrcalError(f"{weights_path}: cannot read router weights ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("members"), list) or not isinstance(payload.get("cards"), dict):
        raise LrcalError(f"{weights_path}: router weights have an unexpected layout")
    members = []
    for i, state in enumerate(payload["members"]):
        net = build_network(config, spec)
        try:
            net.load_state_dict(state, strict=True)
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise LrcalError(f"{weights_path}: member {i} does not fit the recorded config ({first[:160]})") from None
        net.eval()
        members.append(net)
    if not members:
        raise LrcalError(f"{weights_path}: router has no networks")
    summaries = {m["name"]: m for m in sidecar["models"] if isinstance(m, dict) and "name" in m}
    cards: dict[str, ModelCard] = {}
    p_dim = members[0].profile_encoder.net[0].in_features
    for name, entry in payload["cards"].items():
        try:
            card = card_from_tensors(name, entry, summaries.get(name, {}))
        except (KeyError, AttributeError, TypeError):
            raise LrcalError(f"{weights_path}: token bank entry for '{name}' is malformed") from None
        problem = card_problem(card, profile_dim=p_dim, tasks=len(spec.task_vocab), members=len(members),
                               hidden=config.hidden, feature_dim=spec.dim)
        if problem:
            raise LrcalError(f"{weights_path}: token bank entry for '{name}' has {problem}")
        cards[name] = card
    # artifacts written before the profile prior was fitted smoothed toward the overall accuracy
    prior = (ProfilePrior.from_dict(sidecar["profile_prior"]) if "profile_prior" in sidecar
             else ProfilePrior(strength=config.profile_smoothing))
    prior.offsets(len(spec.task_vocab))  # refuses a prior that does not fit the task vocabulary
    # artifacts written before the decision rule decided on the network's own scores
    try:
        rule = DecisionRule.from_dict(sidecar.get("decision_rule"))
    except LrcalError as exc:
        raise LrcalError(f"{directory / SIDECAR_NAME}: {exc}") from None
    router = Router(config=config, spec=spec, members=members, cards=cards, info=dict(sidecar.get("info") or {}),
                    profile_prior=prior, decision_rule=rule)
    router.info["artifact"] = str(directory)
    return router

"""Registering models and listing them with their calibration/token state."""

from __future__ import annotations

import asyncio
import math
import os
import re
from dataclasses import replace

from lrcal import lifecycle
from lrcal.errors import LrcalError, UsageError
from lrcal.model_limits import MAX_CONCURRENCY, MAX_PRICE_PER_MTOK, MAX_RETRIES, MAX_TIMEOUT_S
from lrcal.store import ModelEndpoint, Store

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
API_STYLES = ("openai", "ollama")


def check_model_name(name: str, where: str = "") -> str:
    """The one rule for model names, whether typed (`add-model`) or read from an outcome log
    (`import-outcomes`): letters, digits and . _ : / @ + -, at most 128 characters, starting
    with a letter or digit; '/' separates non-empty parts other than '.' and '..'."""
    valid = isinstance(name, str) and bool(_MODEL_NAME.match(name)) and all(
        part not in ("", ".", "..") for part in name.split("/")
    )
    if not valid:
        shown = repr(name) if len(str(name)) <= 60 else repr(str(name)[:57] + "...")
        raise UsageError(
            f"{where}invalid model name {shown} ({len(str(name)):,} characters): use letters, digits and "
            ". _ : / @ + - (at most 128 characters, starting with a letter or digit; no '..' parts)"
        )
    return name


# the gateway's routing alias (`lrcal serve --alias`, its default): a model of that name could
# never be asked for by name
RESERVED_MODEL_NAMES = frozenset({"lrcal/auto"})
MAX_API_MODEL_CHARS = 256


def check_api_model(value: str | None) -> str | None:
    """The id sent upstream as ``model``: one line of printable text, at most 256 characters."""
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_API_MODEL_CHARS or not value.isprintable():
        shown = repr(value) if len(value) <= 60 else repr(value[:57] + "...")
        raise UsageError(f"--api-model must be one line of printable text, 1 to {MAX_API_MODEL_CHARS} characters "
                         f"(got {shown}, {len(value):,} characters)")
    return value


def check_api_key_env(value: str | None) -> str | None:
    """Only the NAME of an environment variable is stored, never a key."""
    if value is None or value == "":
        return None
    if len(value) > 128:
        raise UsageError(f"--api-key-env takes the NAME of an environment variable: at most 128 characters "
                         f"(got {len(value):,})")
    if not _ENV_NAME.match(value):
        raise UsageError(
            "--api-key-env takes the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key itself"
        )
    if len(value) >= 32 and not value.isupper():
        raise UsageError("--api-key-env looks like a key value; pass the NAME of the variable that holds it")
    return value


def add_model(
    store: Store,
    name: str,
    *,
    base_url: str,
    api_model: str | None = None,
    api_style: str = "openai",
    api_key_env: str | None = None,
    price_in: float = 0.0,
    price_out: float = 0.0,
    max_concurrency: int = 4,
    timeout_s: float = 60.0,
    probe: bool = True,
    max_retries: int | None = None,
    metadata: dict | None = None,
    images: bool = True,
) -> dict:
    """Register a model. ``images`` False: text-only, never sent an image (`lrcal serve`); the
    probe also registers a model as text-only when its endpoint refuses a tiny image."""
    from lrcal.endpoints import validate_base_url

    check_model_name(name)
    if name in RESERVED_MODEL_NAMES:
        raise UsageError(f"'{name}' is the routing alias of `lrcal serve`: a model of that name could not be "
                         "asked for by name; choose another name")
    api_model = check_api_model(api_model)
    if api_style not in API_STYLES:
        raise UsageError(f"--api-style must be one of {', '.join(API_STYLES)}, not {api_style!r}")
    check_endpoint_numbers(price_in=price_in, price_out=price_out, max_concurrency=max_concurrency,
                           timeout_s=timeout_s, max_retries=max_retries)
    metadata = dict(metadata or {})
    if max_retries is not None:
        metadata["max_retries"] = int(max_retries)
    api_key_env = check_api_key_env(api_key_env)
    try:
        base_url = validate_base_url(base_url)
    except LrcalError as exc:
        raise UsageError(str(exc)) from None
    endpoint = ModelEndpoint(
        base_url=base_url,
        api_model=api_model or name,
        api_style=api_style,
        api_key_env=api_key_env,
        price_in_per_mtok=price_in,
        price_out_per_mtok=price_out,
        max_concurrency=max_concurrency,
        timeout_s=timeout_s,
        accepts_images=images,
    )
    existing = store.find_model(name)
    if existing is not None and existing["status"] == lifecycle.REMOVED:
        raise LrcalError(
            f"a removed model named '{name}' is kept for audit; `lrcal models remove {name} --purge` deletes it"
        )
    store.refuse_taken_name(name)  # before the probe spends a request (`Store.add_model` checks again)
    notes: list[str] = []
    if api_key_env and not os.environ.get(api_key_env):
        notes.append(f"environment variable {api_key_env} is not set; requests will be sent without a key")
    if probe:
        probe_notes, images_accepted = probe_endpoint(endpoint)
        notes.extend(probe_notes)
        endpoint = replace(endpoint, accepts_images=endpoint.accepts_images and images_accepted)
    row = store.add_model(name, endpoint, metadata=metadata)
    row["notes"] = notes
    return row


# What a definite refusal of the probe image looks like: the same request without the image was
# just answered, so a 400/415/422 is about the image. Any other failure (429, 408, 409, 5xx, a
# timeout...) says nothing about images: the model keeps them, with a note.
IMAGE_REFUSAL_STATUSES = frozenset({400, 415, 422})
PROBE_IMAGE_SIDE = 64  # vision encoders refuse smaller ones (Qwen2-VL: 56x56 pixels at least)


def probe_endpoint(endpoint: ModelEndpoint) -> tuple[list[str], bool]:
    """List the endpoint's models and send one tiny request; raise a one-line error if it fails.
    When the endpoint ``accepts_images``, also send a small image: (notes, False) when it refuses
    it (HTTP 400, 415 or 422), so that the model is registered as text-only."""
    from lrcal.endpoints import EndpointClient, EndpointConfig

    config = EndpointConfig(
        base_url=endpoint.base_url,
        api_model=endpoint.api_model,
        api_style=endpoint.api_style,
        api_key_env=endpoint.api_key_env,
        timeout_s=min(endpoint.timeout_s, 30.0),
        max_retries=1,
    )

    async def go() -> tuple[list[str], bool]:
        async with EndpointClient(config) as client:
            notes = list(await client.probe() or [])
            if not endpoint.accepts_images:
                return notes, False
            call = await client.complete("What colour is this image? One word.", _probe_image(), "image/png",
                                         max_retries=0)  # fmt: skip
            if call.error_kind is None:
                return notes, True
            reason = _probe_failure(call)
            # the refusal's own status: inside a 200 stream's error event it is not the HTTP one
            if call.error_kind == "http_4xx" and call.error_status in IMAGE_REFUSAL_STATUSES:
                notes.append(f"the endpoint refused a small image ({reason}); "
                             "registered as text-only: `lrcal serve` never sends it an image")  # fmt: skip
                return notes, False
            notes.append(f"image input could not be checked ({reason}); registered as accepting images "
                         "(`lrcal models set NAME --no-images` if it does not)")  # fmt: skip
            return notes, True

    return asyncio.run(go())


def _probe_failure(call) -> str:
    """The probe call's error once: its message already starts "HTTP 429: " when it has a status."""
    message = call.error_message or call.error_kind or "no response"
    if call.http_status and call.http_status >= 400 and not message.startswith(f"HTTP {call.http_status}"):
        message = f"HTTP {call.http_status}: {message}"
    return message


def _probe_image() -> bytes:
    """A small grey PNG, PROBE_IMAGE_SIDE pixels square."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (PROBE_IMAGE_SIDE, PROBE_IMAGE_SIDE), (128, 128, 128)).save(out, format="PNG")
    return out.getvalue()


def model_overview(store: Store, *, include_removed: bool = False) -> list[dict]:
    """Every model with its calibration and token state (for `lrcal models`).

    ``token`` uses the words of the TUI's Models view (`lrcal.services.review.models`):
    trained (learned with the router), fitted (onboarded with the router frozen), stale
    (fitted for an older router version), none."""
    from lrcal.services.review.models import TOKEN_FITTED, token_states

    from lrcal.services.calibration_basis import left_out_calibration_runs

    rows = []
    calibrated = store.outcome_example_counts(["calibration"], left_out_runs=left_out_calibration_runs(store))
    tokens = token_states(store, include_removed=include_removed)
    for model in store.list_models(include_removed=include_removed):
        token, version = tokens[model["id"]]
        rows.append(
            {
                "name": model["name"],
                "status": model["status"],
                "source": model["source"],
                "base_url": model["base_url"],
                "api_model": model["api_model"],
                "api_style": model["api_style"],
                "api_key_env": model["api_key_env"],
                "price_in_per_mtok": model["price_in_per_mtok"],
                "price_out_per_mtok": model["price_out_per_mtok"],
                "max_concurrency": model["max_concurrency"],
                "timeout_s": model["timeout_s"],
                "calibrated_examples": calibrated.get(model["id"], 0),
                "token": token,
                "token_fitted": token == TOKEN_FITTED,
                "token_router_version": version,
                "enabled": model["status"] == lifecycle.ENABLED,
                "accepts_images": bool(model["accepts_images"]),
            }
        )
    return rows


def check_endpoint_numbers(*, price_in: float | None = None, price_out: float | None = None,
                           max_concurrency: int | None = None, timeout_s: float | None = None,
                           max_retries: int | None = None) -> None:
    """The one check of a model's prices and limits (`add-model` and `models set`): finite,
    in range, or a usage error naming the option. None: not given."""
    for value in (price_in, price_out):
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_PRICE_PER_MTOK):
            raise UsageError(f"prices must be finite numbers from 0 to {MAX_PRICE_PER_MTOK:,.0f} "
                             f"(USD per million tokens; got {value:g})")
    if max_concurrency is not None and not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--max-concurrency must be from 1 to {MAX_CONCURRENCY} (got {max_concurrency})")
    if timeout_s is not None and not 0 < timeout_s <= MAX_TIMEOUT_S:  # also refuses inf and NaN
        raise UsageError(f"--timeout must be a positive number of seconds, at most {MAX_TIMEOUT_S}")
    if max_retries is not None and not 0 <= max_retries <= MAX_RETRIES:
        raise UsageError(f"--max-retries must be from 0 to {MAX_RETRIES} (got {max_retries})")


# What `lrcal models set` may change: option name -> (column, label in the event message).
CHANGEABLE = dict(
    price_in=("price_in_per_mtok", "price in (USD/Mtok)"), price_out=("price_out_per_mtok", "price out (USD/Mtok)"),
    base_url=("base_url", "base URL"), api_model=("api_model", "API model"), api_style=("api_style", "API style"),
    api_key_env=("api_key_env", "API key variable"), max_concurrency=("max_concurrency", "max concurrency"),
    timeout_s=("timeout_s", "timeout (s)"), images=("accepts_images", "image input"),
)


def change_model(store: Store, name: str, **values) -> dict:
    """Change a registered model's endpoint settings or prices (``values``: keys of `CHANGEABLE`,
    None = unchanged). One ``changed`` event records the old and new values. New prices apply
    from then on: to the cost of every outcome stored afterwards and to routing's expected cost;
    stored outcomes keep the cost they were measured at."""
    from lrcal.endpoints import validate_base_url

    model = store.get_model(name)
    if model["status"] == lifecycle.REMOVED:
        raise LrcalError(lifecycle.explain_refusal(name, model["status"], "changed"))
    unknown = set(values) - set(CHANGEABLE)
    if unknown:
        raise UsageError(f"cannot change {', '.join(sorted(unknown))}")
    given = {key: value for key, value in values.items() if value is not None}
    if not given:
        options = ", ".join("--" + ("timeout" if key == "timeout_s" else key.replace("_", "-")) for key in CHANGEABLE)
        raise UsageError(f"nothing to change: give at least one of {options}")
    check_endpoint_numbers(**{key: given[key] for key in ("price_in", "price_out", "max_concurrency", "timeout_s")
                              if key in given})
    if "api_style" in given and given["api_style"] not in API_STYLES:
        raise UsageError(f"--api-style must be one of {', '.join(API_STYLES)}, not {given['api_style']!r}")
    if "api_key_env" in given:
        given["api_key_env"] = check_api_key_env(given["api_key_env"])  # "" clears it
    if "api_model" in given:
        given["api_model"] = check_api_model(given["api_model"])
    if "images" in given:
        given["images"] = int(bool(given["images"]))
    if "base_url" in given:
        if model["source"] != "endpoint":
            raise LrcalError(f"model '{name}' was imported from outcome logs and has no endpoint")
        try:
            given["base_url"] = validate_base_url(given["base_url"])
        except LrcalError as exc:
            raise UsageError(str(exc)) from None
    changes = {CHANGEABLE[key][0]: value for key, value in given.items() if model[CHANGEABLE[key][0]] != value}
    if not changes:
        return {**model, "changed": {}}
    labels = {column: label for column, label in CHANGEABLE.values()}
    message = f"{name}: " + "; ".join(
        f"{labels[column]} {shown_value(model[column])} → {shown_value(value)}" for column, value in changes.items()
    )
    # never under a running calibration or validation of the model: it prices and attributes its
    # outcomes by the model row it read at start (a new price was ignored for the rest of the run,
    # and the warning below counted only the outcomes stored so far)
    with store.lock(f"calibrate:{name}", purpose="models set"), store.lock(f"validate:{name}", purpose="models set"):
        row = store.change_model(name, changes, message=message)
    # Which model answers may have changed: outcomes stored so far describe the previous one, and
    # calibrate / live-validate reuse them unless asked --fresh. Said, not undone: a moved host
    # (a new base URL) still serves the same model.
    identity = sorted(set(changes) & ENDPOINT_IDENTITY)
    measured = store.outcome_example_counts(["calibration", "validation"]).get(model["id"], 0) if identity else 0
    return {**row, "changed": {column: [model[column], value] for column, value in changes.items()},
            "outcomes_from_previous_endpoint": measured}


# the columns that say which model answers: a change leaves the stored outcomes measured on another
ENDPOINT_IDENTITY = frozenset({"base_url", "api_model", "api_style"})


def shown_value(value) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, float):
        # the shortest text that reads back as the same float (repr): two different prices never
        # print alike (:g showed 1.6e-06 for 0.00000160000001 too); "3" rather than "3.0"
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def remove_model(store: Store, name: str, *, purge: bool = False, reason: str = "") -> dict:
    """Take a model out of lrcal: never listed, routed or trained on again. Its outcomes stay
    for audit (and for `lrcal outcomes NAME`) unless ``purge``; the audit log always stays."""
    model = store.get_model(name)
    if model["status"] == lifecycle.REMOVED and not purge:
        raise LrcalError(f"model '{name}' is already removed (add --purge to delete its outcomes)")
    # never under a running calibration or validation of the model: it would keep writing
    # outcomes for a removed model, or lose the rows it is writing to a purge
    with store.lock(f"calibrate:{name}", purpose="remove"), store.lock(f"validate:{name}", purpose="remove"):
        return store.remove_model(name, purge=purge, reason=reason)


def enable_problem(store: Store, name: str) -> str | None:
    """Why ``name`` cannot be enabled without --force (None: it can). A model is enabled on a
    passed live validation with the router in use: not on one it failed, never had (a model
    forced in before, then disabled) or passed with a router that has since been replaced."""
    model = store.get_model(name)
    status = model["status"]
    if not lifecycle.can_transition(status, lifecycle.ENABLED):
        return lifecycle.explain_refusal(name, status, lifecycle.ENABLED)
    latest = next((v for v in store.latest_validations() if v["model_id"] == model["id"]), None)
    current = store.current_router_version()
    again = f"run `lrcal live-validate {name} --enable` (or use --force, which is recorded)"
    if latest is None:
        return f"model '{name}' has never passed live validation; {again}"
    if latest["decision"] != "validated":
        return f"model '{name}' was {latest['decision']} by its latest live validation; {again}"
    if current is not None and latest["router_version"] != current["version"]:
        return (f"model '{name}' passed live validation with router {latest['router_version']}, not with "
                f"{current['version']}, the router in use; {again}")
    results = latest["results"] or {}
    if results.get("not_applied"):
        return (f"model '{name}' passed its latest live validation, but it was not applied ("
                f"{' and '.join(results['not_applied'])} changed while it ran); {again}")
    if "judged_token_id" in results:  # validations recorded before this key skip the check
        from lrcal.services.live_validation import RunState

        if RunState.now(store, name).token_id != results["judged_token_id"]:
            return f"model '{name}' passed live validation with a capability token since refitted; {again}"
    return None


def enable(store: Store, name: str, *, force: bool = False, reason: str = "") -> dict:
    model = store.get_model(name)
    if model["status"] == lifecycle.ENABLED:
        return model
    if model["source"] != "endpoint":
        raise LrcalError(f"model '{name}' was imported from outcome logs and has no endpoint to route to")
    problem = enable_problem(store, name)
    if problem and not force:
        raise LrcalError(problem)
    if problem and not " ".join(reason.split()) and model["status"] != lifecycle.REMOVED:
        # as the TUI asks: a change past the gate says why in the audit log
        raise UsageError(f"enabling '{name}' past the gate needs a reason (--reason TEXT), recorded in the audit "
                         f"log; the gate says: {problem}")
    # a forced enable past the gate is recorded as forced even where the lifecycle allows the move
    # (disabled → enabled): the audit log said "forced": false for a model that never passed
    return store.set_status(name, lifecycle.ENABLED, force=force, reason=reason, event_kind="enabled",
                            bypassed=problem if force else None)


def disable(store: Store, name: str, *, reason: str = "") -> dict:
    model = store.get_model(name)
    if model["status"] == lifecycle.DISABLED:
        return model
    if model["status"] != lifecycle.ENABLED:
        raise LrcalError(f"model '{name}' is {model['status']}, not enabled")
    return store.set_status(name, lifecycle.DISABLED, reason=reason or "disabled by user", event_kind="disabled")

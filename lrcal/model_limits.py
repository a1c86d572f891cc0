"""The bounds of a registered model's prices and limits, shared by the CLI's option parser
(typer ranges: these also refuse NaN and inf) and `lrcal.services.models.check_endpoint_numbers`
(callers other than the CLI). Stdlib only: the CLI imports it at start-up."""

MAX_PRICE_PER_MTOK = 1e6  # USD per million tokens: far above any real price, far below overflow
MAX_CONCURRENCY = 1024
MAX_RETRIES = 20
MAX_TIMEOUT_S = 24 * 3600

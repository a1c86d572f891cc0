"""`lrcal tui`: a Textual review of per-task routing, thin over the review service it is handed
(`lrcal.services.review`, which imports no Textual and is unit-tested on its own). The TUI
never opens the store or runs SQL."""

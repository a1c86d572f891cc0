"""`lrcal tui`: a Textual review of per-task routing, thin over the headless queries in
`lrcal.tui.data` (which import no Textual and are unit-tested on their own)."""

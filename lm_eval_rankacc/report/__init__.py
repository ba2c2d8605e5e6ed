"""Presentation of the analyses: tables (:mod:`.tables`) and figures (:mod:`.figures`)."""

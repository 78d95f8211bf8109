"""Verdicts on recorded runs: which levels are *matching*, where the winning ticket lies, which tickets transfer.

``rules`` holds the matching rules (a registry), ``tables`` reads run files into verdict tables
(:func:`winning_tickets`, :func:`transfer_matrix`), ``format`` prints them. Nothing here trains.
"""

from rgnet.verdicts.format import format_tickets, format_transfer_gaps, format_transfer_matrix
from rgnet.verdicts.rules import (
           DEFAULT_RULE,
           DEFAULT_TOLERANCE,
           RULES,
           Rule,
           get_rule,
           matching,
           register,
           winning_level,
)
from rgnet.verdicts.tables import DEFAULT_METRIC, METRICS, TRUNK_ARM, arms, protocol, transfer_matrix, winning_tickets

__all__ = ["DEFAULT_METRIC", "DEFAULT_RULE", "DEFAULT_TOLERANCE", "METRICS", "RULES", "Rule", "TRUNK_ARM", "arms",
           "format_tickets", "format_transfer_gaps", "format_transfer_matrix", "get_rule", "matching", "protocol",
           "register", "transfer_matrix", "winning_level", "winning_tickets"]

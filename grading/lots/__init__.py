"""Lots, recipe versions, outlets' cartons, carton compliance, pack-out, what-if and settlement.

``lots``: a grower's lot on a line (start, close, switch, list), and its stored recipe version
(``recipes``). ``cartons``: the open carton per packing outlet, which fruit went in it, and its
close. ``compliance``: the class tolerance of a closed carton. ``packout``: a lot's totals per
class and size, in SQL. ``whatif``: a lot's stored measurements under another recipe.
``settlement``: what the grower is owed from a price table. ``service``: the line-level
operations that tie these to the running line.
"""

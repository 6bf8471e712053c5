"""What calls cost: token usage, the dated price table, counting before sending, the ledger.

    from claude_magics.cost import Usage, price_usage
    cost = price_usage(Usage.from_api(message["usage"]), message["model"])

* :mod:`.usage`: ``Usage``, the one value type for a call's tokens by kind;
* :mod:`.pricing`: the price table and the one function that prices usage;
* :mod:`.tokens`: ``--count``'s report and the worst case a request can cost;
* :mod:`.ledger`: every call's spend in SQLite, for ``%claude_usage`` and the budget.
"""

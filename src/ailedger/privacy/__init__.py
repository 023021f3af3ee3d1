"""Differentially private analytics over an owner's data: queries, training, accounting.

A data owner answers questions about a dataset without letting anyone learn much about any
one row. Everything released goes through a vetted mechanism and is described by
:class:`~ailedger.privacy.charges.Charge` records, which the owner's node records on chain
per release; the accountant composes every charge ever made on a dataset into the epsilon
it has spent.

Modules, one concept each:

* :mod:`.charges`: what one release costs, encoded canonically for the chain.
* :mod:`.accountant`: epsilon spent by many releases (PLD accountant; RDP cross-check).
* :mod:`.table`: the owner's CSV read under a declared schema (bounds, categories).
* :mod:`.queries`: counts, sums, means, histograms and quantiles through OpenDP.
* :mod:`.training`: a DP linear model (logistic regression) trained by DP-SGD in numpy.

Neighbouring datasets differ by adding or removing one row throughout (OpenDP's
``symmetric_distance`` with ``d_in=1``; dp-accounting's ``ADD_OR_REMOVE_ONE``).

This package is a capability that uses only foundations (``ailedger.errors``,
``ailedger.untrusted_json``); the chain and the node use it, not the reverse.
"""

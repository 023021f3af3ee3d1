"""The compute market, by role.

``requester/``: what a researcher's home does with its jobs: submit a bundle and pay into
escrow, follow status and logs, fetch and check the result (``job``), keep bundles, logs
and outputs (``files``), and serve providers from its node (``inbox``, ``http``).

``provider/``: what a GPU or CPU owner's home does: the agent that stakes, bids and runs
(``agent``, ``runner``), the sandbox (``sandbox``, ``confine``), the machine it offers
(``machine``), and jobs run at the data for compute-to-data (``c2d``).

Shared by both: job bundles (``jobs``), outputs and their release rules (``outputs``),
and the sealed logs and outputs that pass between them (``transfer``).
"""

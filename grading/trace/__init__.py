"""Traceability: GS1 codes for cartons and pallets, labels, the Digital Link resolver's view
model and EPCIS 2.0 events. Domain only; printers are in ``drivers.printer``, HTTP in
``api.routes.resolver``. See docs/traceability.md."""

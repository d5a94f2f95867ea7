"""The app's own layer between the pages and the ``rrs`` library (the library never imports it).

Streamlit modules: :mod:`ui.state` (session keys, settings kept across pages, uploads),
:mod:`ui.sidebar` (page frame, image, model, device, fast preset), :mod:`ui.caching`
(``st.cache_resource`` models, ``st.cache_data`` results keyed by settings objects),
:mod:`ui.widgets` (settings controls, metric cards, figures, exports, ``with_progress``),
:mod:`ui.runs` (long work: predicted time, progress, Stop, the provenance line),
:mod:`ui.style` (the projector stylesheet, injected once per page), and the pages' sections:
:mod:`ui.explain`, :mod:`ui.certify_view`, :mod:`ui.attack`, :mod:`ui.compare` and
:mod:`ui.learn` (each page file is its controls and one call per section).
Plain Python (no streamlit, usable from tests and scripts): :mod:`ui.compute` (the results
the pages show), :mod:`ui.certify` (the Certify page's app layer: scheme labels,
predicted time, radius slider, status line, export record; the workflow is :mod:`rrs.workflows`),
:mod:`ui.jobs` (heavy work through the process-wide scheduler),
:mod:`ui.story` (sentences computed from the numbers they describe), :mod:`ui.predict`
(predicted times per job kind, fitted to the jobs finished here), :mod:`ui.plots` (plotly
figures and the app's PNG exports; a package: :mod:`ui.plots.style`, :mod:`ui.plots.maps`,
:mod:`ui.plots.charts`, :mod:`ui.plots.png`), :mod:`ui.budgets` (what the app computes in one request)
and :mod:`ui.export` (JSON and CSV files).
"""

# Imported once, up front: plotly imports pandas lazily, and the first imports from several
# sessions' script threads at once saw a half-initialised module (a load test found this).
import pandas  # noqa: E402,F401


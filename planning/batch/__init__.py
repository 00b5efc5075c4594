"""Batch planning over many studies: what a study is (`inputs`), what one study yields per
level (`rows`), and the results table (`table`). The running of it (Dask) is in
`app.batch_cli`; the per-study work in `app.batch_jobs`.
"""

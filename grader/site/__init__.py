"""Build-time machinery of the course site (MkDocs hooks and the helpers they call).

mkdocs.yml loads grader/site/hooks.py; the helpers here each do one job:
notebook_pages turns a learner notebook into a page, languages says which
editions the site builds.
"""

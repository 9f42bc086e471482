"""linksyn: knowledge-rich QA synthesis at scale (LinkSyn + BoostQA) as Kubernetes-native services.

The import package `linksyn` lives in the `services/` folder (see pyproject.toml); each service is a subpackage.
"""

__version__ = "0.1.0"

"""GitHub: one personal access token (classic or fine-grained)."""

from byok.services.base import Service


class GitHub(Service):
    id = "github"
    name = "GitHub"
    category = "developer"
    key_prefixes = ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_")

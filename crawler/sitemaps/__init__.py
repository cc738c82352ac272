"""Sitemaps: `document` reads one sitemap document (streaming, bounded, pure); `entries` turns what
it lists into frontier URLs through the scope.
"""

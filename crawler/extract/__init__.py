"""A fetched response into rows: `html` reads title, links, base href and meta robots (selectolax,
pure); `page` turns a response into a page row, its links and the URLs it discovers;
`parse_pool` is the process that parses big pages, replaced if it dies.
"""

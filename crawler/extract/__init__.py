"""A fetched response into rows: `html` reads title, links with their anchor text, base href,
canonical, meta description, first h1, hreflang alternates and meta robots (selectolax, pure);
`directives` reads robots directives (meta and X-Robots-Tag) into rules and into the list kept;
`page` turns a response into a page row, its links and alternates, and the URLs it discovers;
`parse_pool` is the process that parses big pages, replaced if it dies, and `packed` the form
a big page's links come back from it in.
"""

"""robots.txt: `origins` parses each origin's file (RFC 9309 groups, our product token) and
follows it through its life (fetch, redirects, retries, TTL, restore from the database);
`matcher` compiles a group's rules into a `RuleMatcher` that checks a URL cheaply (longest
match, Allow wins a tie, `*` and `$`).
"""

"""Small helpers shared by several test modules (tests/ is on sys.path)."""
def strings_in(value):
    """Every string in a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def job_results(client, response) -> list[dict]:
    """Each file's result line of an upload (POST /api/runs answers 202 with its jobs): the refusals
    it answered at once, then every job's lines, as GET /api/jobs/{id} gives them. The suite runs jobs
    where they are enqueued, so they have ended by the time the upload answers."""
    data = response.json()
    lines = list(data["results"])
    for job in data.get("jobs", []):
        found = client.get(f"/api/jobs/{job['id']}").json()
        lines += found["results"] or [{"name": found["name"], "status": "error", "message": found["message"]}]
    return lines


def url_names() -> set[str]:
    """Every URL name of the site (the API's included); an unnamed pattern goes by its route."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns)
            elif isinstance(p, URLPattern):
                yield p.name or str(p.pattern)

    return set(walk(get_resolver().url_patterns))

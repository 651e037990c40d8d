"""MovieLens 100k from ../shared/data for end-to-end tests (never copied into the repo).

Standard library only."""
import os


def dataset_path():
    shared = os.environ.get("RECSTREAM_SHARED",
                            os.path.join(os.path.dirname(__file__), "../../../shared"))
    for rel in ("ml-100k/u.data", "data/ml-100k/u.data"):
        path = os.path.join(shared, rel)
        if os.path.exists(path):
            return path
    raise AssertionError("ml-100k/u.data not found under %s (set RECSTREAM_SHARED)" % shared)


def movielens_events(limit, oldest=True):
    """limit ratings of MovieLens 100k as events (eventId ml-<line>): the oldest (ties by
    line), or (oldest=False) the first lines of u.data (in file order, which spreads over many
    more users)."""
    rows = []
    with open(dataset_path()) as f:
        for line_no, line in enumerate(f, 1):
            user, item, rating, seconds = line.split()
            rows.append((int(seconds), line_no, user, item, int(rating)))
            if not oldest and len(rows) == limit:
                break
    if oldest:
        rows.sort()
    return [{"eventId": "ml-%d" % n, "userId": u, "eventType": "rating", "itemId": i,
             "value": r, "timestamp": s * 1000} for s, n, u, i, r in rows[:limit]]


def movielens_items():
    """The MovieLens items with their genres as categories; every 17th is unavailable."""
    base = os.path.dirname(dataset_path())
    with open(os.path.join(base, "u.genre"), encoding="latin-1") as f:
        genres = [line.split("|")[0] for line in f if "|" in line]
    items = []
    with open(os.path.join(base, "u.item"), encoding="latin-1") as f:
        for line in f:
            cols = line.rstrip("\n").split("|")
            if len(cols) < 6:
                continue
            cats = [g for g, flag in zip(genres, cols[5:]) if flag == "1"]
            items.append({"itemId": cols[0], "title": cols[1][:200], "categories": cats[:8],
                          "available": int(cols[0]) % 17 != 0})
    return items

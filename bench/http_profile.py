"""cProfile of N transition requests (bench_six.step1) through the whole Flask app (test client), SQLite or PG."""
import cProfile, io, json, os, pstats, sys, time
sys.path.insert(0, os.getcwd())
from sqlalchemy import event
from bench.common import make_app, seed, create_schema
from bench.throughput import prepare
from engine.clock import SystemClock

url = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
create_schema(url)
app = make_app(url, clock=SystemClock())
world = seed(app)
ids, token = prepare(app, world, n + 20)
body = json.dumps({"trigger": "step1", "expected_version": 1, "data": {"note": "Bench"}})
h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
c = app.test_client()
for i in ids[:20]:
    assert c.post(f"/api/v1/cases/{i}/transitions", data=body, headers=h).status_code == 200
from web.extensions import db
with app.app_context():
    eng = db.engine
trips = []
event.listen(eng, "before_cursor_execute", lambda *a: trips.append(1))
prof = cProfile.Profile() if not os.environ.get('NOPROF') else None
t = time.process_time(); w = time.perf_counter()
prof and prof.enable()
for i in ids[20:]:
    r = c.post(f"/api/v1/cases/{i}/transitions", data=body, headers=h)
    assert r.status_code == 200, r.get_data()
prof and prof.disable()
cpu = (time.process_time() - t) / n * 1e3; wall = (time.perf_counter() - w) / n * 1e3
print(f"{n} requests: CPU {cpu:.2f} ms, wall {wall:.2f} ms per transition request (profiled), statements {len(trips)/n:.1f}")
if not prof: sys.exit(0)
s = io.StringIO(); pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(45); print(s.getvalue()[:9000])
s = io.StringIO(); pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25); print(s.getvalue()[:5000])

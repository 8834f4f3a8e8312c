from loader.config import Settings
def test_smoke(settings, engine, tmp_path):
    from loader.pipeline import run_pipeline
    from loader.sample import write_sample
    p = tmp_path / "s.ndjson"
    with open(p, "wb") as f: write_sample(f, events=5000, seed=1)
    r = run_pipeline(settings, [str(p)])
    print(r)
    r2 = run_pipeline(settings, [str(p)])
    print(r2)

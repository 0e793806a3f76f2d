from scorer.server import build_app

app = build_app()

from scorer.process.web import build_app

app = build_app()

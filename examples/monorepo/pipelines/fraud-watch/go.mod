module acme.dev/pipelines/fraud-watch

go 1.22

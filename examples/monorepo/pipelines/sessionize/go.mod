module acme.dev/pipelines/sessionize

go 1.22

module github.com/twofold-dev/twofold

go 1.26.8

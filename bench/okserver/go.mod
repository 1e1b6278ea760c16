module chaosrec.bench/okserver

go 1.21

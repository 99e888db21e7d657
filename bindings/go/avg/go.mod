module libavg/avg

go 1.22

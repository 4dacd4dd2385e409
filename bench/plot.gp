# SPDX-License-Identifier: MIT
# Draws bench/out/scaling.png for scripts/bench.sh:
#   gnuplot -e "tput='throughput.dat'" -e "mem='memory.dat'" \
#           -e "out='scaling.png'" -e "subtitle='...'" bench/plot.gp
# Each .dat file: a header line "workers name1 name2 ...", then one row per
# worker count. tput holds M ops/s, mem bytes per task; either may be ''.

if (!exists("tput")) tput = ''
if (!exists("mem")) mem = ''
if (!exists("out")) out = 'scaling.png'
if (!exists("subtitle")) subtitle = ''

both = strlen(tput) > 0 && strlen(mem) > 0
set terminal pngcairo size (both ? 1400 : 800), 560 font ',10'
set output out
set key top left box opaque
set grid
set logscale x 2
set xtics (1, 2, 4, 8)
set xrange [0.8:10]
set xlabel 'worker threads (this machine: 2 cores; 4 and 8 oversubscribe)'
set style data linespoints

if (both) set multiplot layout 1, 2 title 'weft scaling, '.subtitle
if (!both) set title 'weft scaling, '.subtitle

if (strlen(tput) > 0) {
	ncol = words(system('head -n 1 '.tput))
	set ylabel 'throughput, M ops/s (log scale)'
	set logscale y
	plot for [i=2:ncol] tput using 1:i lw 2 pt 7 title columnhead(i)
	unset logscale y
}
if (strlen(mem) > 0) {
	ncol = words(system('head -n 1 '.mem))
	set ylabel 'idle memory, bytes per sleeping task'
	set yrange [0:*]
	set key bottom right
	plot for [i=2:ncol] mem using 1:i lw 2 pt 7 title columnhead(i), \
		4600 dt 2 lc rgb 'red' title 'target 4,600 B'
}
if (both) unset multiplot

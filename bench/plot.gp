# SPDX-License-Identifier: MIT
# Draws bench/out/scaling.png for scripts/bench.sh:
#   gnuplot -e "tput='throughput.dat'" -e "sync='sync.dat'" \
#           -e "mem='memory.dat'" -e "out='scaling.png'" \
#           -e "subtitle='...'" bench/plot.gp
# Each .dat file: a header line "workers name1 name2 ...", then one row per
# worker count. tput (core runtime) and sync (synchronisation and channels)
# hold M ops/s, mem bytes per task; any of them may be ''. One panel each,
# side by side. Baselines (a name with "pthread") are drawn dashed.

if (!exists("tput")) tput = ''
if (!exists("sync")) sync = ''
if (!exists("mem")) mem = ''
if (!exists("out")) out = 'scaling.png'
if (!exists("subtitle")) subtitle = ''

panels = (strlen(tput) > 0) + (strlen(sync) > 0) + (strlen(mem) > 0)
if (panels < 1) panels = 1
set terminal pngcairo size (panels > 1 ? 700 * panels : 800), 560 font ',10'
set output out
set key top left box opaque
set grid
set logscale x 2
set xtics (1, 2, 4, 8)
set xrange [0.8:10]
set xlabel 'worker threads (this machine: 2 cores; 4 and 8 oversubscribe)'
set style data linespoints

if (panels > 1) set multiplot layout 1, panels title 'weft scaling, '.subtitle
if (panels == 1) set title 'weft scaling, '.subtitle

if (strlen(tput) > 0) {
	hdr = system('head -n 1 '.tput)
	ncol = words(hdr)
	set ylabel 'core runtime: M ops/s (log scale)'
	set logscale y
	plot for [i=2:ncol] tput using 1:i lw 2 pt 7 title columnhead(i)
	unset logscale y
}
if (strlen(sync) > 0) {
	hdr = system('head -n 1 '.sync)
	ncol = words(hdr)
	set ylabel 'sync and channels: M ops/s (log scale)'
	set logscale y
	set offsets 0, 0, graph 0.3, 0 # room for the key above the lines
	plot for [i=2:ncol] sync using 1:i lw 2 pt 7 \
		dt 1 + (strstrt(word(hdr, i), 'pthread') > 0) \
		title columnhead(i)
	set offsets 0, 0, 0, 0
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
if (panels > 1) unset multiplot

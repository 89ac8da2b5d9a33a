#!/bin/sh
# bench/lab_scale_plot.sh — the plot of docs/labs-at-scale.md: start and stop time of a
# tree lab against its number of hosts, luaswitch beside Mininet (lxbr), from the rows
# bench/lab_scale.lua appends to LAB_SCALE_TSV. Needs gnuplot (apt-get install gnuplot-nox).
#
#   LAB_SCALE_TSV=/tmp/scale.tsv build/luaswitch bench/lab_scale.lua 16,64,256,1024
#   bench/lab_scale_plot.sh /tmp/scale.tsv docs/lab_scale.svg
#
# Columns: hosts arp start pingall pairs lost stop rss mem mn_none mn_pingall (Mininet
# start+stop, and start+pingall+stop; "-" where not run).
set -eu
in=${1:?usage: lab_scale_plot.sh rows.tsv out.svg}
out=${2:?usage: lab_scale_plot.sh rows.tsv out.svg}
mn=$(mktemp)
trap 'rm -f "$mn"' EXIT
awk -F'\t' '$10 != "-" { print $1, $10 }' "$in" >"$mn"
gnuplot <<GP
set terminal svg size 720,420 dynamic font "sans,12"
set output "$out"
set title "Tree labs on a 2-core VM: start + stop (s) against hosts"
set xlabel "hosts"
set ylabel "seconds"
set key top left
set logscale xy
set grid
plot "$in" using 1:(\$3+\$7) with linespoints lw 2 pt 7 title "luaswitch start + stop", \
     "$in" using 1:3 with linespoints lw 1 pt 6 dt 2 title "luaswitch start", \
     "$mn" using 1:2 with linespoints lw 2 pt 5 title "Mininet (lxbr) start + stop"
GP
echo "wrote $out"

# gnuplot script written by rush: gnuplot plot.gp (in this directory)
set terminal pngcairo size 1100,520 font ',10' noenhanced
set grid
set key outside right top
set key autotitle columnhead
set xlabel 'seconds since T0'
set linetype 9 lc rgb '#8c564b'
set linetype 10 lc rgb '#7f7f7f'
set linetype cycle 10
set output 'throughput.png'
set title 'rush: answers per second by step'
set ylabel 'per second'
plot for [i=2:11] 'throughput.dat' using 1:i with lines lw 1.5
set output 'latency.png'
set title 'rush: p99 (solid) and p50 (dashed) latency by step, per second'
set logscale y
set ylabel 'ms'
plot for [i=1:10] 'latency.dat' using 1:(column(2*i+1)) with lines lw 1.5 lc i title columnhead(2*i+1), for [i=1:10] 'latency.dat' using 1:(column(2*i)) with lines dt 2 lc i notitle
unset logscale y
set output 'latency-dist.png'
set title 'rush: latency by percentile (HDR histograms)'
set key autotitle
set logscale x
set logscale y
set xlabel 'percentile'
set ylabel 'ms'
set xtics ('0%%' 1, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
plot 'latency-dist.dat' index 0 using 2:3 with lines lw 1.5 title 'login', 'latency-dist.dat' index 1 using 2:3 with lines lw 1.5 title 'queue_join', 'latency-dist.dat' index 2 using 2:3 with lines lw 1.5 title 'ws_open', 'latency-dist.dat' index 3 using 2:3 with lines lw 1.5 title 'seat_map', 'latency-dist.dat' index 4 using 2:3 with lines lw 1.5 title 'hold', 'latency-dist.dat' index 5 using 2:3 with lines lw 1.5 title 'release', 'latency-dist.dat' index 6 using 2:3 with lines lw 1.5 title 'pay', 'latency-dist.dat' index 7 using 2:3 with lines lw 1.5 title 'browse_events', 'latency-dist.dat' index 8 using 2:3 with lines lw 1.5 title 'browse_hold', 'latency-dist.dat' index 9 using 2:3 with lines lw 1.5 title 'browse_join'
unset logscale x
unset logscale y
set xtics autofreq
set output 'queue-wait.png'
set title 'rush: queue wait by percentile'
set logscale x
set xlabel 'percentile'
set ylabel 'seconds'
set xtics ('0%%' 1, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)
plot 'queue-wait.dat' using 2:3 with lines lw 2 title 'queue wait'
unset logscale x
set xtics autofreq
set output 'fairness.png'
set title 'rush: admission time vs arrival time (one dot per user)'
set xlabel 'arrival (join answered), s since T0'
set ylabel 'admitted, s since T0'
plot 'fairness.dat' using 1:2 with dots title 'users', x title 'no wait' lw 1

#!/bin/bash
# samples each ferry thread's state and kernel stack top every 100 ms
pid=$1
while kill -0 $pid 2>/dev/null; do
  for t in /proc/$pid/task/*; do
    name=$(cat $t/comm 2>/dev/null); st=$(awk '{print $3}' $t/stat 2>/dev/null)
    top=$(head -1 $t/stack 2>/dev/null | awk '{print $2}')
    echo "$name $st $top"
  done
  sleep 0.1
done

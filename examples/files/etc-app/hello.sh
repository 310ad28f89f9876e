#!/bin/sh
echo "built from $SOURCE_OMI"

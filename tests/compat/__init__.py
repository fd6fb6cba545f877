"""The dk compatibility suite (issue 13): dk's corpus and dk-shaped fixtures through dkb."""

variable "version" {
  type    = string
  default = "1.0.0"
}

source "outscale-chroot" "chroot" {
  custom_endpoint_oapi = "sim://state/sim"
  omi_description      = "Built in a chroot by osci from {{ .SourceOMIName }}"
  omi_name             = "chroot-${var.version}"
  root_volume_size     = 12
  root_volume_tags = {
    Name = "chroot-build-volume"
  }
  tags = {
    Name    = "chroot"
    source  = "{{ .SourceOMI }}"
    version = var.version
  }
  source_omi_filter {
    filters = {
      image-name = "Debian-12-*"
    }
    most_recent = true
    owners      = ["Outscale"]
  }
}

build {
  sources = ["source.outscale-chroot.chroot"]

  provisioner "shell" {
    inline = [
      "echo 'Built in a chroot by osci (${var.version})' > /etc/motd",
      "test -s /etc/resolv.conf && echo 'name resolution configured'",
    ]
  }

  provisioner "file" {
    destination = "/opt/"
    source      = "files/chroot/"
  }
}

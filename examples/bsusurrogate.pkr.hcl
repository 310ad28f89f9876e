variable "version" {
  type    = string
  default = "1.0.0"
}

source "outscale-bsusurrogate" "surrogate" {
  communicator         = "ssh"
  custom_endpoint_oapi = "sim://state/sim"
  omi_name             = "surrogate-${var.version}"
  omi_root_device = {
    delete_on_vm_deletion = true
    device_name           = "/dev/sda1"
    source_device_name    = "/dev/xvdf"
    volume_size           = 10
    volume_type           = "gp2"
  }
  ssh_timeout  = "2m"
  ssh_username = "outscale"
  tags = {
    Name   = "surrogate"
    source = "{{ .SourceOMI }}"
  }
  vm_type = "tinav5.c2r4p2"
  launch_block_device_mappings {
    delete_on_vm_deletion = true
    device_name           = "/dev/sda1"
    volume_size           = 10
  }
  launch_block_device_mappings {
    delete_on_vm_deletion = true
    device_name           = "/dev/xvdf"
    volume_size           = 8
    volume_type           = "gp2"
  }
  source_omi_filter {
    filters = {
      image-name = "Ubuntu-22.04-*"
    }
    most_recent = true
    owners      = ["Outscale"]
  }
}

build {
  sources = ["source.outscale-bsusurrogate.surrogate"]

  provisioner "shell" {
    inline = [
      "parted -s /dev/xvdf mklabel msdos mkpart primary 1MiB 100%",
      "while [ ! -b /dev/xvdf1 ]; do sleep 0.1; done",
      "mkfs.ext4 -q /dev/xvdf1",
      "mkdir -p /mnt/new && mount /dev/xvdf1 /mnt/new",
      "for d in usr etc root home var; do cp -a /$d /mnt/new/; done",
      "ln -s usr/bin /mnt/new/bin; ln -s usr/bin /mnt/new/sbin; mkdir -p /mnt/new/tmp /mnt/new/dev /mnt/new/run",
      "for d in lib lib64; do [ -e /$d ] && cp -a /$d /mnt/new/; done; true",
      "echo 'Installed by a surrogate build of osci (${var.version})' > /mnt/new/etc/motd",
      "umount /mnt/new",
    ]
  }
}
